"""One owner per serial port: serialises the Modbus RTU requests of every device on the bus."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pymodbus.client import AsyncModbusSerialClient
from pymodbus.exceptions import ConnectionException, ModbusException

from ...backoff import backoff_delay
from ...configtypes import Identifier, resolve_path
from ...logs import log_event
from ...portlease import LENT
from .profiles import SerialDefaults, Table

log = logging.getLogger(__name__)

RECONNECT_BASE_S = 0.5
RECONNECT_CAP_S = 30.0


class BusConfig(BaseModel):
    """A serial port (``buses[]`` in the gateway config). Unset line settings come from the
    profile of the first device on the bus."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Identifier
    port: str = Field(min_length=1)  # a device path, or a pyserial URL such as rfc2217://host:port
    baudrate: Literal[1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200] | None = None
    parity: Literal["N", "E", "O"] | None = None
    stopbits: Literal[1, 2] | None = None
    timeout_s: float = Field(default=0.5, gt=0, le=10)

    @field_validator("port")
    @classmethod
    def _resolve_port(cls, value: str, info: ValidationInfo) -> str:
        if "://" in value:
            return value
        from pathlib import Path

        return str(resolve_path(Path(value), info))


class ModbusError(Exception):
    """A read that failed; ``state`` is how the device shows up in health."""

    state = "error"
    counter = "errors"


class BusDown(ModbusError):
    state = "bus down"
    counter = "bus_down"


class NoResponse(ModbusError):
    state = "timeout"
    counter = "timeouts"


class CrcError(ModbusError):
    state = "crc error"
    counter = "crc_errors"


class BadFrame(ModbusError):
    state = "bad frame"
    counter = "bad_frames"


class ExceptionResponse(ModbusError):
    counter = "exceptions"

    def __init__(self, code: int) -> None:
        super().__init__(f"Modbus exception code {code}")
        self.code = code
        self.state = f"exception code {code}"


def _crc16(data: bytes) -> int:
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def _crc_ok(frame: bytes) -> bool:
    return _crc16(frame[:-2]) == int.from_bytes(frame[-2:], "little")


def classify_silence(received: bytes, slave: int) -> ModbusError:
    """Why no valid answer arrived, judged from the bytes that did arrive during the request."""
    if not received:
        return NoResponse("no response")
    start = received.find(bytes([slave]))
    frame = received[start:] if start >= 0 else b""
    if len(frame) >= 5:
        # A read response (function 3/4: addr, fc, byte count, data, crc) or an exception
        # response (addr, fc|0x80, code, crc) that arrived whole but fails its CRC.
        length = 5 + frame[2] if frame[1] in (0x03, 0x04) else 5 if frame[1] & 0x80 else 0
        if length and len(frame) >= length and not _crc_ok(frame[:length]):
            return CrcError(f"CRC mismatch in a {length}-byte response")
    return BadFrame(f"{len(received)} bytes that are not a valid response: {received[:16].hex()}")


class ModbusBus:
    """Owner of one serial port; ``read`` is the only way devices talk to it."""

    def __init__(self, config: BusConfig, defaults: SerialDefaults) -> None:
        self.config = config
        self.id = config.id
        self._serial = {
            "baudrate": config.baudrate or defaults.baudrate,
            "parity": config.parity or defaults.parity,
            "stopbits": config.stopbits or defaults.stopbits,
            "bytesize": defaults.bytesize,
        }
        self._lock = asyncio.Lock()
        self._client: AsyncModbusSerialClient | None = None
        self._connect_failures = 0
        self._next_connect_at = 0.0
        self.down_reason: str | None = "not opened yet"
        self._in_request = False
        self._rx = b""
        self._idle_rx_len = 0
        self._lent = False  # a local tool (discovery) has the port: stay closed until returned
        self.name = f"modbus:{config.id}"
        self.counters: dict[str, int] = dict.fromkeys(
            ("requests", "responses", "retries", "timeouts", "crc_errors", "bad_frames",
             "exceptions", "opens", "connect_failures", "unsolicited_bytes"),
            0,
        )

    @property
    def up(self) -> bool:
        return self._client is not None and self._client.connected

    async def read(
        self, slave: int, table: Table, address: int, count: int, *, attempts: int = 1
    ) -> list[int]:
        """Read ``count`` registers; retries only timeouts and damaged frames, not exceptions."""
        async with self._lock:
            client = await self._ensure_open()
            error: ModbusError = NoResponse("no attempt made")
            for attempt in range(max(1, attempts)):
                if attempt:
                    self.counters["retries"] += 1
                try:
                    return await self._request(client, slave, table, address, count)
                except ExceptionResponse:
                    self.counters["exceptions"] += 1
                    raise  # the device answered: asking again gives the same answer
                except (NoResponse, CrcError, BadFrame) as exc:
                    self.counters[exc.counter] += 1
                    error = exc
                    if not client.connected:  # the port went away mid-request
                        self._mark_down("port closed during a request")
                        raise BusDown(self.down_reason) from None
            raise error

    async def _request(
        self, client: AsyncModbusSerialClient, slave: int, table: Table, address: int, count: int
    ) -> list[int]:
        if table is Table.INPUT:
            read = client.read_input_registers
        else:
            read = client.read_holding_registers
        self.counters["requests"] += 1
        self._rx = b""
        self._in_request = True
        try:
            response = await read(address, count=count, device_id=slave)
        except ConnectionException as exc:
            self._mark_down(str(exc))
            raise BusDown(self.down_reason) from None
        except ModbusException:
            raise classify_silence(self._rx, slave) from None
        finally:
            self._in_request = False
        if response.isError():
            raise ExceptionResponse(getattr(response, "exception_code", 0))
        registers = list(getattr(response, "registers", []))
        if len(registers) != count:
            raise BadFrame(f"asked for {count} registers, got {len(registers)}")
        self.counters["responses"] += 1
        return registers

    def _trace_packet(self, sending: bool, data: bytes) -> bytes:
        # pymodbus hands us its whole receive buffer each time bytes arrive; keep the latest
        # during a request (to classify a failure), count what arrives when nobody asked.
        if sending:
            self._idle_rx_len = 0
        elif self._in_request:
            self._rx = bytes(data)
        else:
            grown = len(data) - self._idle_rx_len
            self.counters["unsolicited_bytes"] += grown if grown > 0 else len(data)
            self._idle_rx_len = len(data)
        return data

    async def release(self) -> None:
        """Lend the port: finish the request in flight, close, and stay closed."""
        self._lent = True
        async with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None
            self.down_reason = LENT
        log_event(log, "bus_lent", bus=self.id, port=self.config.port)

    def take_back(self) -> None:
        """The next read opens the port again at once (no backoff: nothing failed)."""
        self._lent = False
        self._connect_failures = 0
        self._next_connect_at = 0.0
        log_event(log, "bus_taken_back", bus=self.id, port=self.config.port)

    async def _ensure_open(self) -> AsyncModbusSerialClient:
        if self._lent:
            raise BusDown(LENT)
        if self._client is not None and self._client.connected:
            return self._client
        if self._client is not None:  # it was open and the port went away
            self._client.close()
            self._client = None
            if self.down_reason is None:
                self._mark_down("port closed")
        if time.monotonic() < self._next_connect_at:
            raise BusDown(self.down_reason)
        port = self.config.port
        client = AsyncModbusSerialClient(
            port,
            timeout=self.config.timeout_s,
            retries=0,  # retries are ours: per device, and skipped for devices already failing
            reconnect_delay=0,  # reconnects are ours too, with jitter, and visible in health
            trace_packet=self._trace_packet,
            name=self.id,
            **self._serial,  # type: ignore[arg-type]
        )
        client.set_max_no_responses(1 << 30)
        if await client.connect():
            self.counters["opens"] += 1
            self._client = client
            self._connect_failures = 0
            self.down_reason = None
            log_event(log, "bus_up", bus=self.id, port=port, **self._serial)
            return client
        client.close()
        self.counters["connect_failures"] += 1
        missing = "://" not in port and not os.path.exists(port)  # noqa: ASYNC240 - a stat
        self._mark_down(f"cannot open {port}: " + ("no such device" if missing else "open failed"))
        raise BusDown(self.down_reason)

    def _mark_down(self, reason: str) -> None:
        first = self._connect_failures == 0  # was up (or never tried): a state change to log
        self.down_reason = reason
        delay = backoff_delay(self._connect_failures, RECONNECT_BASE_S, RECONNECT_CAP_S)
        self._connect_failures += 1
        self._next_connect_at = time.monotonic() + delay
        if first or self._connect_failures % 10 == 0:
            log_event(log, "bus_down", logging.WARNING, bus=self.id, reason=reason,
                      attempts=self._connect_failures, retry_in_s=round(delay, 2))

    async def close(self) -> None:
        """Called once the drivers have stopped; deliberately not waiting for the lock."""
        if self._client is not None:
            self._client.close()
            self._client = None
        self.down_reason = "closed"
