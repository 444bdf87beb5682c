"""Modbus RTU temperature (and humidity) sensors, read per their device profile."""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass, field
from typing import Annotated, Literal

from pydantic import Field, ValidationInfo, field_validator

from gridsense_protocol import DriverHealth, DriverState, Reading, utc_now

from ...backoff import backoff_delay
from ...configtypes import BUS_IDS, PROFILE_CACHE, PROFILES_DIR, Identifier, context_of
from ...logs import log_event
from ..base import DRIVERS, DeviceConfigBase, Driver, DriverContext
from .bus import BusDown, ModbusBus, ModbusError
from .profiles import ModbusProfile, RegisterMap, Table, load_modbus_profile

log = logging.getLogger(__name__)

FAILING_POLL_CAP_S = 60.0  # a dead sensor is still probed at least this often
IMPLAUSIBLE_LOG_EVERY_S = 60.0  # a stuck sensor logs once a minute, not once a poll
MAX_WORDS_PER_READ = 125  # Modbus limit for function 3/4

Metric = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,47}$")]


class ModbusTemperatureConfig(DeviceConfigBase):
    type: Literal["modbus_temperature"]
    bus: Identifier
    slave: Annotated[int, Field(ge=1, le=247)] | None = None  # default: the profile's
    profile: Annotated[str, Field(min_length=1)]
    metrics: Annotated[list[Metric], Field(min_length=1)] | None = None  # default: all
    poll_interval_s: Annotated[float, Field(ge=0.05, le=3600)] = 1.0
    retries: Annotated[int, Field(ge=0, le=10)] = 2
    report_deadband: Annotated[float, Field(ge=0)] = 0.2
    refresh_interval_s: Annotated[float, Field(gt=0, le=86400)] = 5.0

    @field_validator("bus")
    @classmethod
    def _bus_defined(cls, value: str, info: ValidationInfo) -> str:
        known = context_of(info).get(BUS_IDS)
        if known is not None and value not in known:
            names = ", ".join(sorted(known)) or "none"
            raise ValueError(f"unknown bus {value!r} (buses defined: {names})")
        return value

    @field_validator("profile")
    @classmethod
    def _profile_exists(cls, value: str, info: ValidationInfo) -> str:
        profile_for(value, info)
        return value

    @field_validator("metrics")
    @classmethod
    def _metrics_in_profile(cls, value: list[str] | None, info: ValidationInfo) -> list[str] | None:
        name = info.data.get("profile")
        if value is None or name is None:
            return value
        profile = profile_for(name, info)
        known = [r.metric for r in profile.registers]
        for metric in value:
            if metric not in known:
                raise ValueError(
                    f"profile {name!r} has no metric {metric!r} (it has: {', '.join(known)})"
                )
        if len(set(value)) != len(value):
            raise ValueError("a metric is listed twice")
        return value


def profile_for(name: str, info: ValidationInfo) -> ModbusProfile:
    """Load a profile once per config validation; any failure becomes a message for that key."""
    ctx = context_of(info)
    cache: dict[str, ModbusProfile] = ctx.setdefault(PROFILE_CACHE, {})
    if name not in cache:
        try:
            cache[name] = load_modbus_profile(name, ctx.get(PROFILES_DIR))
        except (OSError, ValueError) as exc:  # FileNotFoundError, ConfigError
            raise ValueError(str(exc).replace("\n", "; ")) from None
    return cache[name]


@dataclass(frozen=True, slots=True)
class ReadBlock:
    """Contiguous registers of one table fetched in one request."""

    table: Table
    address: int
    count: int
    registers: tuple[RegisterMap, ...]


def plan_reads(registers: list[RegisterMap]) -> list[ReadBlock]:
    """Merge adjacent registers of the same table so a device costs as few requests as possible."""
    blocks: list[ReadBlock] = []
    for reg in sorted(registers, key=lambda r: (r.table.value, r.address)):
        last = blocks[-1] if blocks else None
        if (
            last is not None
            and last.table is reg.table
            and reg.address <= last.address + last.count
            and reg.address + reg.count - last.address <= MAX_WORDS_PER_READ
        ):
            count = max(last.count, reg.address + reg.count - last.address)
            blocks[-1] = ReadBlock(last.table, last.address, count, (*last.registers, reg))
        else:
            blocks.append(ReadBlock(reg.table, reg.address, reg.count, (reg,)))
    return blocks


@dataclass
class _Device:
    config: ModbusTemperatureConfig
    slave: int
    blocks: list[ReadBlock]
    state: str = "starting"
    failures: int = 0  # consecutive polls without an answer
    reported: dict[str, tuple[float, float]] = field(default_factory=dict)  # metric -> value, t
    implausible_logged_at: float = -math.inf
    implausible_count: int = 0

    @property
    def point(self) -> str:
        return self.config.point


class ModbusTemperatureDriver:
    def __init__(self, bus: ModbusBus, devices: list[_Device], ctx: DriverContext) -> None:
        self.name = f"modbus_temperature/{bus.id}"
        self._bus = bus
        self._devices = devices
        self._ctx = ctx
        self.counters: dict[str, int] = dict.fromkeys(
            ("polls", "poll_ms", "readings", "reported", "implausible", "timeouts",
             "crc_errors", "bad_frames", "exceptions", "bus_down"),
            0,
        )

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            for index, device in enumerate(self._devices):
                # Spread the first polls over one interval so the devices do not queue up at once.
                offset = device.config.poll_interval_s * index / max(1, len(self._devices))
                group.create_task(self._poll_forever(device, offset), name=f"poll {device.point}")

    async def _poll_forever(self, device: _Device, offset: float) -> None:
        loop = asyncio.get_running_loop()
        this_task = asyncio.current_task()
        await asyncio.sleep(offset)
        while True:
            started = loop.time()
            try:
                await self.poll_once(device)
            except Exception as exc:  # a bug or library surprise: this device fails, not the bus
                device.failures += 1
                self.counters["errors"] = self.counters.get("errors", 0) + 1
                log_event(log, "poll_failed", logging.ERROR, exc_info=exc, point=device.point,
                          bus=self._bus.id, error=repr(exc))
                self._set_state(device, "error", detail=repr(exc))
            # Summed poll time (ms): with "polls", the mean poll latency (health, /metrics).
            self.counters["poll_ms"] += round((loop.time() - started) * 1000)
            if this_task is not None and this_task.cancelling():
                # Python 3.11's wait_for (inside pymodbus) swallows a cancel that races with
                # the response (gh-86296); honour it here or the driver never stops.
                raise asyncio.CancelledError
            await asyncio.sleep(max(0.0, started + self._next_delay(device) - loop.time()))

    def _next_delay(self, device: _Device) -> float:
        interval = device.config.poll_interval_s
        if device.failures == 0 or device.state == BusDown.state:
            return interval  # the bus owner paces its own reopening
        cap = max(interval, FAILING_POLL_CAP_S)
        return backoff_delay(device.failures, interval, cap)

    async def poll_once(self, device: _Device) -> None:
        self.counters["polls"] += 1
        # A device already failing gets one attempt: retries are for riding over a glitch.
        attempts = 1 + (device.config.retries if device.failures == 0 else 0)
        samples: list[tuple[RegisterMap, float, list[int]]] = []
        try:
            for block in device.blocks:
                words = await self._bus.read(
                    device.slave, block.table, block.address, block.count, attempts=attempts
                )
                for reg in block.registers:
                    start = reg.address - block.address
                    raw = words[start : start + reg.count]
                    samples.append((reg, reg.decode(raw), raw))
        except ModbusError as exc:
            self.counters[exc.counter] = self.counters.get(exc.counter, 0) + 1
            if not isinstance(exc, BusDown):
                device.failures += 1
            self._set_state(device, exc.state, detail=str(exc))
            return
        if device.failures:
            device.reported.clear()  # report the first value after an outage immediately
        device.failures = 0
        ts = utc_now()
        now = asyncio.get_running_loop().time()
        plausible = True
        for reg, value, raw in samples:
            if not (math.isfinite(value) and reg.plausible(value)):
                plausible = False
                self._reject(device, reg, value, raw, now)
                continue
            value = round(value, 6)  # 224 * 0.1 is 22.400000000000002
            report = self._due(device, reg.metric, value, now)
            self.counters["readings"] += 1
            self.counters["reported"] += report
            self._ctx.emit(
                Reading(point=device.point, metric=reg.metric, value=value, unit=reg.unit, ts=ts),
                report,
            )
        self._set_state(device, "ok" if plausible else "implausible")

    def _due(self, device: _Device, metric: str, value: float, now: float) -> bool:
        last = device.reported.get(metric)
        if (
            last is None
            or abs(value - last[0]) > device.config.report_deadband
            or now - last[1] >= device.config.refresh_interval_s
        ):
            device.reported[metric] = (value, now)
            return True
        return False

    def _reject(
        self, device: _Device, reg: RegisterMap, value: float, raw: list[int], now: float
    ) -> None:
        self.counters["implausible"] += 1
        device.implausible_count += 1
        if now - device.implausible_logged_at >= IMPLAUSIBLE_LOG_EVERY_S:
            device.implausible_logged_at = now
            log_event(
                log, "implausible_reading", logging.WARNING,
                point=device.point, bus=self._bus.id, slave=device.slave, metric=reg.metric,
                raw="[" + ",".join(f"0x{w:04x}" for w in raw) + "]", value=value,
                valid_range=f"{reg.valid_range[0]:g}..{reg.valid_range[1]:g}",
                count=device.implausible_count,
            )

    def _set_state(self, device: _Device, state: str, detail: str | None = None) -> None:
        if state != device.state:
            level = logging.INFO if state == "ok" else logging.WARNING
            log_event(
                log, "device_state", level, point=device.point, bus=self._bus.id,
                slave=device.slave, state=state, previous=device.state, detail=detail,
            )
            device.state = state

    def health(self) -> DriverHealth:
        devices = {d.point: d.state for d in self._devices}
        answering = sum(1 for s in devices.values() if s in ("ok", "implausible"))
        detail = None
        if not self._bus.up and self._bus.down_reason:
            state, detail = DriverState.DOWN, f"bus {self._bus.id} down: {self._bus.down_reason}"
        elif all(s == "starting" for s in devices.values()):
            state = DriverState.STARTING
        elif all(s == "ok" for s in devices.values()):
            state = DriverState.OK
        elif answering:
            state = DriverState.DEGRADED
        else:
            state = DriverState.DOWN
        counters = dict(self.counters)
        counters.update({f"bus_{k}": v for k, v in self._bus.counters.items()})
        return DriverHealth(state=state, detail=detail, counters=counters, devices=devices)


@DRIVERS.register(ModbusTemperatureConfig)
def create(configs: list[ModbusTemperatureConfig], ctx: DriverContext) -> list[Driver]:
    by_bus: dict[str, list[ModbusTemperatureConfig]] = {}
    for config in configs:
        by_bus.setdefault(config.bus, []).append(config)
    drivers: list[Driver] = []
    profiles: dict[str, ModbusProfile] = {}
    for bus_id, bus_configs in by_bus.items():
        devices = []
        for config in bus_configs:
            if config.profile not in profiles:
                profiles[config.profile] = load_modbus_profile(config.profile, ctx.profiles_dir)
            profile = profiles[config.profile]
            wanted = config.metrics or [r.metric for r in profile.registers]
            blocks = plan_reads([profile.register(m) for m in wanted])
            devices.append(_Device(config, config.slave or profile.default_slave, blocks))
        first = profiles[bus_configs[0].profile]
        bus = ctx.shared.get_or_create(
            ("modbus_bus", bus_id), lambda b=bus_id, p=first: ModbusBus(ctx.buses[b], p.serial)
        )
        ctx.ports.register(bus.config.port, bus)
        drivers.append(ModbusTemperatureDriver(bus, devices, ctx))
    return drivers
