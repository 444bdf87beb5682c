"""Simulated Modbus RTU temperature sensors: a real pymodbus RTU server behind a null-modem relay.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import struct
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from pymodbus.constants import ExcCodes
from pymodbus.framer import FramerType
from pymodbus.server import ModbusSerialServer
from pymodbus.simulator import DataType, SimData, SimDevice

from gridsense_edge.drivers.modbus.profiles import (
    ModbusProfile,
    RegisterMap,
    Table,
    load_modbus_profile,
)
from gridsense_edge.simulator.null_modem import FaultMode, NullModem, read_request

log = logging.getLogger(__name__)

_TABLE_OF_FUNCTION = {3: Table.HOLDING, 4: Table.INPUT}
MAX_GARBAGE_BYTES = 4096  # about what a pty buffers; more would only be dropped


@dataclass(frozen=True)
class SimulatedSensor:
    """One device on the simulated bus. Metrics missing from ``values`` start mid-range."""

    slave: int
    profile: str
    values: Mapping[str, float] = field(default_factory=dict)
    noise: float = 0.0  # ± uniform jitter added to every read


@dataclass(frozen=True)
class _Ramp:
    """A value moving linearly from ``start`` to ``target``; a constant when t1 <= t0."""

    start: float
    target: float
    t0: float
    t1: float

    def at(self, now: float) -> float:
        if now >= self.t1:
            return self.target
        return self.start + (self.target - self.start) * (now - self.t0) / (self.t1 - self.t0)


class _SensorState:
    """Current values of one slave and the pymodbus hook that serves them on every read.

    Ramps are immutable and replaced by a single dict store, so the test thread can change a
    value while the server thread reads without a lock.
    """

    def __init__(self, spec: SimulatedSensor, profile: ModbusProfile, rng: random.Random) -> None:
        self.slave = spec.slave
        self.profile = profile
        self.noise = spec.noise
        self._rng = rng
        unknown = set(spec.values) - {r.metric for r in profile.registers}
        if unknown:
            raise KeyError(f"slave {spec.slave}: profile {profile.id} lacks {sorted(unknown)}")
        now = time.monotonic()
        self._ramps: dict[str, _Ramp] = {}
        for reg in profile.registers:
            low, high = reg.valid_range
            value = float(spec.values.get(reg.metric, (low + high) / 2))
            self._check_encodable(reg, value)
            self._ramps[reg.metric] = _Ramp(value, value, now, now)

    def register(self, metric: str) -> RegisterMap:
        return self.profile.register(metric)

    def value(self, metric: str) -> float:
        self.register(metric)
        return self._ramps[metric].at(time.monotonic())

    def ramp(self, metric: str, to: float, over_s: float) -> None:
        if over_s < 0:
            raise ValueError(f"over_s must be >= 0, got {over_s}")
        self._check_encodable(self.register(metric), to)
        now = time.monotonic()
        self._ramps[metric] = _Ramp(self._ramps[metric].at(now), float(to), now, now + over_s)

    def _check_encodable(self, reg: RegisterMap, value: float) -> None:
        try:
            reg.encode(value)
        except (struct.error, OverflowError, ValueError) as exc:
            raise ValueError(
                f"slave {self.slave} {reg.metric}={value}: does not fit a {reg.type} register "
                f"with scale {reg.scale} ({exc})"
            ) from None

    def _words(self, reg: RegisterMap, now: float) -> list[int]:
        value = self._ramps[reg.metric].at(now)
        if self.noise:
            with contextlib.suppress(struct.error, OverflowError):
                return reg.encode(value + self._rng.uniform(-self.noise, self.noise))
        return reg.encode(value)

    def device(self) -> SimDevice:
        """The pymodbus device: profile registers read-only, every other address illegal."""
        blocks: dict[Table, list[SimData]] = {Table.HOLDING: [], Table.INPUT: []}
        now = time.monotonic()
        for reg in self.profile.registers:
            # SimData addresses are the request (PDU) addresses, 0-based; the deprecated
            # ModbusSequentialDataBlock would shift them by one.
            words = self._words(reg, now)
            blocks[reg.table].append(
                SimData(reg.address, values=words, datatype=DataType.REGISTERS, readonly=True)
            )
        for ident in self.profile.identify:  # a model code: constant, never refreshed
            blocks[ident.table].append(SimData(ident.address, values=[ident.equals],
                                               datatype=DataType.REGISTERS, readonly=True))
        for table, block in blocks.items():
            block.sort(key=lambda data: data.address)
            if not block:  # pymodbus needs one entry per table; INVALID answers "illegal address"
                blocks[table] = [SimData(0, datatype=DataType.INVALID)]
        no_bits = [SimData(0, values=[False] * 16, datatype=DataType.BITS)]
        return SimDevice(
            id=self.slave,
            simdata=(no_bits, list(no_bits), blocks[Table.HOLDING], blocks[Table.INPUT]),
            action=self.refresh_registers,
        )

    async def refresh_registers(
        self,
        function_code: int,
        start_address: int,
        _address: int,
        _count: int,
        registers: list[int],
        _set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        """pymodbus calls this before answering; write the values as of now into its block."""
        table = _TABLE_OF_FUNCTION.get(function_code)
        if table is None:
            return None
        now = time.monotonic()
        for reg in self.profile.registers:
            offset = reg.address - start_address
            if reg.table == table and offset >= 0 and offset + reg.count <= len(registers):
                registers[offset : offset + reg.count] = self._words(reg, now)
        return None


class ModbusSensorSimulator:
    """Several simulated sensors (one per slave id) on one RTU link published at ``link``.

    ``start()`` returns once the server has answered a real read through the relay and the link
    exists; ``stop()`` stops the server, closes the ptys and removes the link.
    """

    def __init__(
        self,
        link: str | os.PathLike[str],
        sensors: Sequence[SimulatedSensor],
        *,
        profiles_dir: Path | None = None,
        seed: int | None = None,
        start_timeout_s: float = 20.0,
    ) -> None:
        if not sensors:
            raise ValueError("at least one simulated sensor is needed")
        self.link = Path(link)
        self._start_timeout_s = start_timeout_s
        self._rng = random.Random(seed)
        self._states: dict[int, _SensorState] = {}
        for spec in sensors:
            if not 1 <= spec.slave <= 247:
                raise ValueError(f"slave id {spec.slave} outside 1..247")
            if spec.slave in self._states:
                raise ValueError(f"slave id {spec.slave} appears twice on {self.link}")
            profile = load_modbus_profile(spec.profile, profiles_dir)
            self._states[spec.slave] = _SensorState(spec, profile, self._rng)
        self._modem = NullModem(self.link, self._states)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopping = asyncio.Event()
        self._ready = threading.Event()
        self._failure: BaseException | None = None

    # -- lifetime -------------------------------------------------------------------------

    def __enter__(self) -> ModbusSensorSimulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> ModbusSensorSimulator:
        if self._thread is not None:
            raise RuntimeError("the simulator was already started")
        self._modem.open()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._run_loop, name=f"modbus-sim:{self.link.name}", daemon=True
        )
        self._thread.start()
        answered = self._ready.wait(self._start_timeout_s + 5)
        if not answered or self._failure is not None:
            self.stop()
            reason = self._failure or "timed out waiting for the server"
            raise RuntimeError(f"Modbus simulator on {self.link} did not start: {reason}")
        log.info(
            "event=simulator_ready link=%s slaves=%s",
            self.link,
            ",".join(str(s) for s in self._states),
        )
        return self

    def stop(self) -> None:
        """Idempotent; safe after a failed start."""
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None and thread.is_alive():
            with contextlib.suppress(RuntimeError):  # the loop already finished
                loop.call_soon_threadsafe(self._stopping.set)
            thread.join(timeout=15)
            if thread.is_alive():
                log.warning("event=simulator_stop_timeout link=%s", self.link)
        self._modem.close()

    def _run_loop(self) -> None:
        assert self._loop is not None
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._serve())
        except BaseException as exc:
            self._failure = exc
            log.error("event=simulator_failed link=%s error=%r", self.link, exc)
        finally:
            self._ready.set()  # unblock start() on failure
            self._loop.close()

    async def _serve(self) -> None:
        first = next(iter(self._states.values())).profile
        server = ModbusSerialServer(
            [state.device() for state in self._states.values()],
            framer=FramerType.RTU,
            port=self._modem.server_port,
            baudrate=first.serial.baudrate,
            parity=first.serial.parity,
            bytesize=first.serial.bytesize,
            stopbits=first.serial.stopbits,
        )
        try:
            await server.serve_forever(background=True)
            assert self._loop is not None
            self._modem.attach(self._loop)
            await self._await_first_answer()
            self._modem.publish_link()
            self._ready.set()
            await self._stopping.wait()
        finally:
            await server.shutdown()
            self._modem.close()

    async def _await_first_answer(self) -> None:
        """Prove the server answers with a real read before anyone is told the link exists."""
        state = next(iter(self._states.values()))
        reg = state.profile.registers[0]
        function_code = 4 if reg.table == Table.INPUT else 3
        request = read_request(state.slave, function_code, reg.address, reg.count)
        deadline = time.monotonic() + self._start_timeout_s
        while time.monotonic() < deadline:
            response = await self._modem.probe(request, within_s=1.0)
            if response is not None and response[1] == function_code:
                return
            await asyncio.sleep(0.1)
        raise TimeoutError(f"pymodbus server on {self._modem.server_port} never answered a read")

    # -- controls (any thread) ------------------------------------------------------------

    @property
    def slaves(self) -> tuple[int, ...]:
        return tuple(self._states)

    @property
    def counters(self) -> dict[str, int]:
        """What the relay did: frames relayed, dropped, corrupted, noise bytes..."""
        return dict(self._modem.counters)

    def profile(self, slave: int) -> ModbusProfile:
        return self._state(slave).profile

    def value(self, slave: int, metric: str) -> float:
        """The current value without noise."""
        return self._state(slave).value(metric)

    def set_value(self, slave: int, metric: str, value: float) -> None:
        self._state(slave).ramp(metric, value, 0.0)

    def ramp(self, slave: int, metric: str, to: float, over_s: float) -> None:
        """Move linearly from the current value to ``to`` over ``over_s`` seconds."""
        self._state(slave).ramp(metric, to, over_s)

    def set_fault(self, slave: int, mode: FaultMode | None) -> None:
        """None heals the line; "silent", "exception" (code 4) or "bad_crc" break it."""
        self._modem.set_fault(slave, mode)

    def fault(self, slave: int) -> FaultMode | None:
        return self._modem.fault(slave)

    def garbage(self, nbytes: int) -> None:
        """Write ``nbytes`` random bytes toward the client; returns once they are on the wire."""
        if not 1 <= nbytes <= MAX_GARBAGE_BYTES:
            raise ValueError(f"nbytes must be 1..{MAX_GARBAGE_BYTES}, got {nbytes}")
        loop = self._loop
        if loop is None or not self._ready.is_set() or self._failure is not None:
            raise RuntimeError("the simulator is not running")
        data = self._rng.randbytes(nbytes)
        future = asyncio.run_coroutine_threadsafe(self._send_noise(data), loop)
        future.result(timeout=10)

    async def _send_noise(self, data: bytes) -> None:
        self._modem.send_noise(data)

    def _state(self, slave: int) -> _SensorState:
        try:
            return self._states[slave]
        except KeyError:
            raise KeyError(f"slave {slave} is not simulated on {self.link}") from None
