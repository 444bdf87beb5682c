"""USB QR scanners in keyboard (HID) mode (``qr_hid``): the kernel's input events read from
the scanner's event device and typed into codes; the device is grabbed (EVIOCGRAB) so the codes
never reach a console. A path that is not an input device (a FIFO replaying recorded events)
is read the same way, without the grab."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import stat

from ...backoff import backoff_delay
from ...logs import log_event
from ..base import DRIVERS, Driver, DriverContext
from .common import RETRY_CAP_S, ScannerBase
from .config import QrHidConfig, load_scanner_profile
from .keymap import INPUT_EVENT, KeyDecoder

log = logging.getLogger(__name__)

EVIOCGRAB = 0x40044590  # _IOW('E', 0x90, int)
READ_BYTES = INPUT_EVENT.size * 64


class HidScanner(ScannerBase):
    def __init__(self, config: QrHidConfig, context: DriverContext) -> None:
        super().__init__(config, load_scanner_profile(config.profile, context.profiles_dir,
                                                      "hid"), context)
        self.device = config.device
        self.name = f"qr_hid:{config.point}"
        self.grabbed = False

    def _open(self) -> int:
        fd = os.open(self.device, os.O_RDONLY | os.O_NONBLOCK)
        self.grabbed = False
        if stat.S_ISCHR(os.fstat(fd).st_mode):
            try:
                fcntl.ioctl(fd, EVIOCGRAB, 1)
                self.grabbed = True
            except OSError as exc:
                os.close(fd)
                raise OSError(f"cannot grab {self.device} (another program holds it?): "
                              f"{exc}") from None
        return fd

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            fd = await self.open_retrying(self._open, self.device)
            ended: asyncio.Future[str] = loop.create_future()
            decoder, pending = KeyDecoder(), bytearray()
            loop.add_reader(fd, self._readable, fd, decoder, pending, ended)
            try:
                reason = await ended
            finally:
                loop.remove_reader(fd)
                self.connected = False
                with contextlib.suppress(OSError):
                    os.close(fd)
            log_event(log, "scanner_device_lost", logging.WARNING, point=self.config.point,
                      device=self.device, reason=reason)
            self.counters["reopens"] += 1
            await asyncio.sleep(backoff_delay(0, 0.5, RETRY_CAP_S))

    def _readable(self, fd: int, decoder: KeyDecoder, pending: bytearray,
                  ended: asyncio.Future[str]) -> None:
        try:
            data = os.read(fd, READ_BYTES)
        except BlockingIOError:
            return
        except OSError as exc:  # ENODEV: unplugged
            self.counters["errors"] += 1
            if not ended.done():
                ended.set_result(str(exc))
            return
        if not data:  # the writer of a FIFO went away
            if not ended.done():
                ended.set_result("end of input")
            return
        pending += data
        whole = len(pending) - len(pending) % INPUT_EVENT.size
        text = "".join(decoder.feed(kind, code, value) for _, _, kind, code, value
                       in INPUT_EVENT.iter_unpack(bytes(pending[:whole])))
        del pending[:whole]
        for code in self.line.feed(text):
            self.present(code)


@DRIVERS.register(QrHidConfig)
def create(devices: list[QrHidConfig], context: DriverContext) -> list[Driver]:
    return [HidScanner(d, context) for d in devices]
