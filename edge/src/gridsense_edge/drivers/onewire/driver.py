"""1-Wire DS18B20 thermometers read from the kernel's w1 sysfs files (``onewire_temperature``)."""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, ValidationInfo, field_validator

from gridsense_protocol import DriverHealth, DriverState, Reading, utc_now

from ...backoff import backoff_delay
from ...configtypes import PROFILES_DIR, ResolvedPath, context_of, default_profiles_dir
from ...logs import log_event
from ..base import DRIVERS, DeviceConfigBase, Driver, DriverContext
from .w1 import OneWireProfile, Outcome, load_onewire_profile, read_celsius

log = logging.getLogger(__name__)

SYSFS_DEVICES = Path("/sys/bus/w1/devices")
FAILING_POLL_CAP_S = 60.0  # an unplugged sensor is still looked for at least this often


class OneWireTemperatureConfig(DeviceConfigBase):
    type: Literal["onewire_temperature"]
    sensor: Annotated[str, Field(pattern=r"^[0-9a-f]{2}-[0-9a-f]{12}$")]  # e.g. 28-0316a2797aff
    profile: Annotated[str, Field(min_length=1, validate_default=True)] = "ds18b20"

    @field_validator("profile")
    @classmethod
    def _profile_exists(cls, value: str, info: ValidationInfo) -> str:
        folder = context_of(info).get(PROFILES_DIR) or default_profiles_dir()
        try:
            profile = load_onewire_profile(value, Path(folder))
        except (OSError, ValueError) as exc:
            raise ValueError(str(exc).replace("\n", "; ")) from None
        family = info.data.get("sensor", "")[:2]
        if family and family != profile.family:
            raise ValueError(f"sensor family {family!r} is not the profile's ({profile.family!r})")
        return value

    base_path: ResolvedPath = SYSFS_DEVICES  # another path for a test tree or a remapped sysfs
    # A 12-bit conversion takes 750 ms and every read waits for one.
    poll_interval_s: Annotated[float, Field(ge=0.05, le=3600)] = 5.0
    report_deadband: Annotated[float, Field(ge=0)] = 0.2
    refresh_interval_s: Annotated[float, Field(gt=0, le=86400)] = 60.0


@dataclass
class _Sensor:
    config: OneWireTemperatureConfig
    profile: OneWireProfile
    state: str = "starting"
    failures: int = 0  # consecutive reads without a value
    last_value: float | None = None  # last accepted, None after a failure (power-on check)
    reported: tuple[float, float] | None = None  # (value, loop time) last put in telemetry
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return self.config.base_path / self.config.sensor


def judge(sensor: _Sensor, outcome: Outcome, value: float | None) -> Outcome:
    """Checks the kernel cannot make: the profile's range and the power-on value."""
    if outcome is not Outcome.OK or value is None:
        return outcome
    low, high = sensor.profile.valid_range
    if not (math.isfinite(value) and low <= value <= high):
        return Outcome.IMPLAUSIBLE
    power_on = sensor.profile.power_on_c
    if power_on is not None and value == power_on and (
            sensor.last_value is None
            or abs(sensor.last_value - value) > sensor.profile.power_on_accept_within_c):
        return Outcome.POWER_ON
    return Outcome.OK


class OneWireTemperatureDriver:
    def __init__(self, sensors: list[_Sensor], ctx: DriverContext) -> None:
        self.name = "onewire_temperature"
        self._sensors = sensors
        self._ctx = ctx
        self.counters: dict[str, int] = dict.fromkeys(
            ("polls", "poll_ms", "readings", "reported",
             *(o.value for o in Outcome if o is not Outcome.OK)),
            0)

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            for index, sensor in enumerate(self._sensors):
                offset = sensor.config.poll_interval_s * index / len(self._sensors)
                group.create_task(self._poll_forever(sensor, offset),
                                  name=f"poll {sensor.config.point}")

    async def _poll_forever(self, sensor: _Sensor, offset: float) -> None:
        loop = asyncio.get_running_loop()
        await asyncio.sleep(offset)
        while True:
            started = loop.time()
            await self.poll_once(sensor)
            # Summed poll time (ms): with "polls", the mean poll latency (health, /metrics).
            self.counters["poll_ms"] += round((loop.time() - started) * 1000)
            interval = sensor.config.poll_interval_s
            delay = interval if sensor.failures == 0 else backoff_delay(
                sensor.failures, interval, max(interval, FAILING_POLL_CAP_S))
            await asyncio.sleep(max(0.0, started + delay - loop.time()))

    async def poll_once(self, sensor: _Sensor) -> None:
        self.counters["polls"] += 1
        # The read waits for the sensor's conversion: off the loop, or every driver stalls.
        outcome, value = await asyncio.to_thread(read_celsius, sensor.path)
        outcome = judge(sensor, outcome, value)
        self._set_state(sensor, outcome.value, value)
        if outcome is not Outcome.OK or value is None:
            self.counters[outcome.value] += 1
            sensor.counts[outcome.value] = sensor.counts.get(outcome.value, 0) + 1
            if outcome is not Outcome.POWER_ON:
                sensor.failures += 1
                sensor.last_value = None
            return
        sensor.failures = 0
        sensor.last_value = value
        now = asyncio.get_running_loop().time()
        last = sensor.reported
        report = (last is None or abs(value - last[0]) > sensor.config.report_deadband
                  or now - last[1] >= sensor.config.refresh_interval_s)
        if report:
            sensor.reported = (value, now)
        self.counters["readings"] += 1
        self.counters["reported"] += report
        self._ctx.emit(Reading(point=sensor.config.point, metric="temperature", value=value,
                               unit=sensor.profile.unit, ts=utc_now()), report)

    def _set_state(self, sensor: _Sensor, state: str, value: float | None) -> None:
        if state != sensor.state:
            log_event(log, "device_state", logging.INFO if state == "ok" else logging.WARNING,
                      point=sensor.config.point, sensor=sensor.config.sensor, state=state,
                      previous=sensor.state, value=value, path=str(sensor.path))
            sensor.state = state

    def health(self) -> DriverHealth:
        devices = {s.config.point: s.state for s in self._sensors}
        states = set(devices.values())
        if states == {"starting"}:
            state = DriverState.STARTING
        elif states == {"ok"}:
            state = DriverState.OK
        elif "ok" in states or "power_on" in states:
            state = DriverState.DEGRADED
        else:
            state = DriverState.DOWN
        return DriverHealth(state=state, counters=dict(self.counters), devices=devices)


@DRIVERS.register(OneWireTemperatureConfig)
def create(configs: list[OneWireTemperatureConfig], ctx: DriverContext) -> list[Driver]:
    profiles: dict[str, OneWireProfile] = {}
    sensors = []
    for config in configs:
        if config.profile not in profiles:
            profiles[config.profile] = load_onewire_profile(config.profile, ctx.profiles_dir)
        sensors.append(_Sensor(config, profiles[config.profile]))
    return [OneWireTemperatureDriver(sensors, ctx)]
