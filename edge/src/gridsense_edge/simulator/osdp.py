"""Simulated OSDP readers: libosdp PeripheralDevices on one pseudo-terminal, as on one RS-485 bus.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..drivers.osdp.line import start_refresh
from .null_modem import _Pty

log = logging.getLogger(__name__)

INPUT_DOOR, INPUT_REX = 0, 1  # the generic reader profile's input numbering
MAX_COMMANDS = 1000  # recorded commands kept (a bound, oldest dropped)
MAX_LINE_BUFFER = 64 * 1024  # per reader: what it has not consumed yet
OSDP_SCAN_BYTES = 64  # scanned data libosdp passes through in one card read


SIM_VENDOR_CODE = 0x0A1B2C  # the identity every simulated reader reports (osdp_PDID)
SIM_MODEL, SIM_FIRMWARE = 7, 0x010203


@dataclass(frozen=True, slots=True)
class SimulatedReader:
    address: int
    key: bytes  # SCBK, 16 bytes

    @property
    def serial_number(self) -> int:
        return 0x47530000 | self.address  # "GS" and the address: one per reader


@dataclass(frozen=True, slots=True)
class ReceivedCommand:
    address: int
    name: str  # output, led, buzzer, text, ...
    args: dict[str, Any]
    at: float  # time.monotonic() when the reader got it


@dataclass
class _Line:
    """The master end of the pty, fanned out to every reader (multi-drop)."""

    fd: int
    buffers: dict[int, bytearray] = field(default_factory=dict)
    silent: set[int] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)
    dropped: int = 0

    def pull(self) -> None:
        try:
            data = os.read(self.fd, 4096)
        except (BlockingIOError, InterruptedError, OSError):
            return
        for address, buffer in self.buffers.items():
            if address in self.silent:
                continue
            if len(buffer) + len(data) > MAX_LINE_BUFFER:
                self.dropped += len(buffer)
                buffer.clear()
            buffer.extend(data)

    def write(self, data: bytes) -> int:
        try:
            return os.write(self.fd, data)
        except (BlockingIOError, InterruptedError):
            return 0
        except OSError:
            return len(data)  # the far end is gone: the bytes fall off the wire


def _channel_class() -> type:
    from osdp import Channel

    class ReaderChannel(Channel):  # type: ignore[misc]
        def __init__(self, line: _Line, address: int) -> None:
            super().__init__()
            self.line = line
            self.address = address
            line.buffers[address] = bytearray()

        def read(self, max_bytes: int) -> bytes:
            with self.line.lock:
                self.line.pull()
                buffer = self.line.buffers[self.address]
                out = bytes(buffer[:max_bytes])
                del buffer[:max_bytes]
            return out

        def write(self, buf: bytes) -> int:
            if self.address in self.line.silent:
                return len(buf)  # unplugged: nothing reaches the wire
            with self.line.lock:
                return self.line.write(bytes(buf))

        def flush(self) -> None:
            return None

    return ReaderChannel


_COMMAND_NAMES = {1: "output", 2: "led", 3: "buzzer", 4: "text"}


class OsdpReaderSimulator:
    def __init__(self, link: Path, readers: Iterable[SimulatedReader], seed: int | None = None,
                 log_level: int | None = None) -> None:
        self.link = Path(link)
        self.readers = {r.address: r for r in readers}
        self.commands: deque[ReceivedCommand] = deque(maxlen=MAX_COMMANDS)
        self.on_command: Callable[[ReceivedCommand], None] | None = None
        self._random = random.Random(seed)
        self._log_level = log_level
        self._pty: _Pty | None = None
        self._line: _Line | None = None
        self._pds: dict[int, Any] = {}
        self._inputs: dict[int, list[int]] = {}
        self._changed = threading.Condition()

    # ---- lifecycle ----

    def start(self) -> None:
        import osdp

        self._pty = _Pty()
        os.set_blocking(self._pty.master, False)
        self._line = _Line(self._pty.master)
        channel = _channel_class()
        caps = osdp.PDCapabilities([
            (osdp.Capability.OutputControl, 1, 1),
            (osdp.Capability.ContactStatusMonitoring, 1, 2),
            (osdp.Capability.LEDControl, 1, 1),
            (osdp.Capability.AudibleControl, 1, 1),
            (osdp.Capability.CardDataFormat, 1, 1),
        ])
        level = self._log_level if self._log_level is not None else osdp.LogLevel.Emergency
        for address, reader in self.readers.items():
            identity = osdp.PdId(1, SIM_MODEL, SIM_VENDOR_CODE, reader.serial_number,
                                 SIM_FIRMWARE)
            info = osdp.PDInfo(address, channel(self._line, address), scbk=reader.key,
                               flags=[osdp.LibFlag.EnforceSecure], name=f"reader-{address}",
                               id=identity)
            pd = osdp.PeripheralDevice(info, caps, log_level=level)
            pd.set_command_handler(self._handler(address))
            self._pds[address] = pd
            self._inputs[address] = [0, 0]
            start_refresh(pd)  # answers within a few ms, like reader firmware
        self._publish_link()
        log.info("event=osdp_simulator_started link=%s readers=%s", self.link,
                 ",".join(map(str, self.readers)))

    def _publish_link(self) -> None:
        assert self._pty is not None
        self.link.parent.mkdir(parents=True, exist_ok=True)
        if self.link.exists() and not self.link.is_symlink():
            raise FileExistsError(f"{self.link} exists and is not a symlink; not replacing it")
        tmp = self.link.with_name(f".{self.link.name}.{os.getpid()}.tmp")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        os.symlink(self._pty.path, tmp)
        os.replace(tmp, self.link)

    def stop(self) -> None:
        for pd in self._pds.values():
            with contextlib.suppress(RuntimeError):
                pd.teardown()
        self._pds.clear()
        if self._pty is not None:
            with contextlib.suppress(OSError):
                if os.readlink(self.link) == self._pty.path:
                    self.link.unlink()
            self._pty.close()
            self._pty = None

    def __enter__(self) -> OsdpReaderSimulator:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    # ---- what the control panel tells the reader ----

    def _handler(self, address: int) -> Callable[[dict[str, Any]], tuple[int, Any]]:
        def handle(command: dict[str, Any]) -> tuple[int, Any]:
            args = {k: v for k, v in command.items() if k != "command"}
            name = _COMMAND_NAMES.get(int(command.get("command", 0)), str(command.get("command")))
            received = ReceivedCommand(address, name, args, time.monotonic())
            self.commands.append(received)
            callback = self.on_command
            if callback is not None:
                callback(received)
            with self._changed:
                self._changed.notify_all()
            return 0, None

        return handle

    def wait_for_command(
        self, predicate: Callable[[ReceivedCommand], bool], timeout_s: float, after: float = 0.0
    ) -> ReceivedCommand | None:
        """The first recorded command received at/after ``after`` matching ``predicate``."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while True:
                for command in list(self.commands):
                    if command.at >= after and predicate(command):
                        return command
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._changed.wait(remaining)

    def is_sc_active(self, address: int) -> bool:
        return bool(self._pds[address].is_sc_active())

    # ---- the person at the door ----

    def _pd(self, address: int) -> Any:
        try:
            return self._pds[address]
        except KeyError:
            raise KeyError(f"no simulated reader at address {address}") from None

    def present_card(self, address: int, number: int | str) -> None:
        """A 26-bit Wiegand read for numbers < 2**26, else as many whole bytes as it needs."""
        import osdp

        value = int(number)
        bits = 26 if value < 2**26 else max(8, ((value.bit_length() + 7) // 8) * 8)
        nbytes = (bits + 7) // 8
        data = (value << (nbytes * 8 - bits)).to_bytes(nbytes, "big")
        self._pd(address).submit_event({
            "event": osdp.Event.CardRead, "reader_no": 0, "direction": 0, "length": bits,
            "format": osdp.CardFormat.Wiegand, "data": data,
        })

    def present_scan(self, address: int, text: str) -> None:
        """A QR code read by the reader's scanner, passed through as raw card data (format
        unspecified, 8 bits a character): libosdp carries up to 64 bytes of it, which is what
        a compact pass is made to fit. (libosdp's ASCII card format does not reach the
        control panel in 3.2.)"""
        import osdp

        data = text.encode("ascii")
        if len(data) > OSDP_SCAN_BYTES:
            raise ValueError(f"{len(data)} bytes scanned; an OSDP reader passes at most "
                             f"{OSDP_SCAN_BYTES} (use the compact pass form)")
        self._pd(address).submit_event({
            "event": osdp.Event.CardRead, "reader_no": 0, "direction": 0,
            "length": len(data) * 8, "format": osdp.CardFormat.Unspecified, "data": data,
        })

    def type_pin(self, address: int, pin: str) -> None:
        """Digits then '#' (0x0D, OSDP's enter key)."""
        import osdp

        data = pin.encode("ascii") + b"\r"
        self._pd(address).submit_event(
            {"event": osdp.Event.KeyPress, "reader_no": 0, "data": data}
        )

    def _report_inputs(self, address: int) -> None:
        import osdp

        self._pd(address).submit_event({
            "event": osdp.Event.Status, "type": osdp.StatusReportType.Input,
            "report": bytes(self._inputs[address]),
        })

    def set_door(self, address: int, is_open: bool) -> None:
        self._inputs[address][INPUT_DOOR] = int(is_open)
        self._report_inputs(address)

    def press_exit(self, address: int) -> None:
        self._inputs[address][INPUT_REX] = 1
        self._report_inputs(address)
        self._inputs[address][INPUT_REX] = 0
        self._report_inputs(address)

    def set_tamper(self, address: int, active: bool) -> None:
        import osdp

        self._pd(address).submit_event({
            "event": osdp.Event.Status, "type": osdp.StatusReportType.Local,
            "report": bytes([int(active), 0]),
        })

    def set_silent(self, address: int, silent: bool) -> None:
        """Unplug (or plug back) one reader: it neither hears nor answers."""
        assert self._line is not None
        with self._line.lock:
            if silent:
                self._line.silent.add(address)
                self._line.buffers[address].clear()
            else:
                self._line.silent.discard(address)
        log.info("event=osdp_reader_%s address=%s", "silent" if silent else "back", address)

    def send_garbage(self, nbytes: int) -> None:
        """Line noise toward the control panel."""
        assert self._line is not None
        noise = bytes(self._random.randrange(256) for _ in range(nbytes))
        with self._line.lock:
            self._line.write(noise)

    def act(self, action: dict[str, Any]) -> None:
        """One scripted step (the CLI's stdin lines and the demo use this)."""
        do = action.get("do")
        address = int(action.get("reader", next(iter(self.readers))))
        if do == "card":
            self.present_card(address, action["number"])
        elif do == "pin":
            self.type_pin(address, str(action["pin"]))
        elif do == "scan":
            self.present_scan(address, str(action["text"]))
        elif do in ("open", "close"):
            self.set_door(address, do == "open")
        elif do == "exit":
            self.press_exit(address)
        elif do == "tamper":
            self.set_tamper(address, bool(action.get("active", True)))
        elif do in ("silent", "back"):
            self.set_silent(address, do == "silent")
        elif do == "garbage":
            self.send_garbage(int(action.get("bytes", 64)))
        else:
            raise ValueError(f"unknown action {do!r} (card, pin, scan, open, close, exit, "
                             "tamper, silent, back, garbage)")
