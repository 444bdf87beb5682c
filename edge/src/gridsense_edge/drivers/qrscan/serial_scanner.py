"""QR scanners in serial mode (``qr_serial``): each code arrives as one line (pyserial)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ...backoff import backoff_delay
from ...logs import log_event
from ..base import DRIVERS, Driver, DriverContext
from .common import RETRY_CAP_S, ScannerBase
from .config import QrSerialConfig, load_scanner_profile

log = logging.getLogger(__name__)

READ_TIMEOUT_S = 0.2


class SerialScanner(ScannerBase):
    def __init__(self, config: QrSerialConfig, context: DriverContext) -> None:
        super().__init__(config, load_scanner_profile(config.profile, context.profiles_dir,
                                                      "serial"), context)
        self.port = config.port
        self.name = f"qr_serial:{config.point}"

    def _open(self) -> Any:
        import serial

        profile = self.profile
        return serial.Serial(self.port, baudrate=profile.baudrate, parity=profile.parity,
                             timeout=READ_TIMEOUT_S)

    async def run(self) -> None:
        while True:
            port = await self.open_retrying(self._open, self.port)
            try:
                await self._read(port)
            except Exception as exc:  # unplugged: reopen
                self.counters["errors"] += 1
                self.counters["reopens"] += 1
                log_event(log, "scanner_port_lost", logging.WARNING, point=self.config.point,
                          port=self.port, error=str(exc))
            finally:
                self.connected = False
                await asyncio.to_thread(port.close)
            await asyncio.sleep(backoff_delay(0, 0.5, RETRY_CAP_S))

    async def _read(self, port: Any) -> None:
        while True:
            data = await asyncio.to_thread(port.read, 512)
            for code in self.line.feed(data.decode("ascii", "replace")):
                self.present(code)


@DRIVERS.register(QrSerialConfig)
def create(devices: list[QrSerialConfig], context: DriverContext) -> list[Driver]:
    return [SerialScanner(d, context) for d in devices]
