"""Scenario files for the Modbus simulator: which sensors exist, and what happens to them when."""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, model_validator

from gridsense_edge.drivers.modbus.profiles import load_modbus_profile
from gridsense_edge.simulator.modbus import (
    MAX_GARBAGE_BYTES,
    ModbusSensorSimulator,
    SimulatedSensor,
)
from gridsense_edge.simulator.null_modem import FaultMode
from gridsense_protocol.yamlconfig import load_yaml_file

log = logging.getLogger(__name__)

NonNegative = Annotated[float, Field(ge=0)]


class ScriptStep(BaseModel):
    """One line of a sensor's timeline; exactly one of value / ramp_to / fault / garbage.

    ``fault: none`` heals the line (YAML ``null`` would read as "key absent").
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    at: NonNegative
    metric: str | None = None
    value: float | None = None
    ramp_to: float | None = None
    over_s: NonNegative = 0.0
    fault: Literal["silent", "exception", "bad_crc", "none"] | None = None
    for_s: Annotated[float, Field(gt=0)] | None = None
    garbage: Annotated[int, Field(ge=1, le=MAX_GARBAGE_BYTES)] | None = None

    @model_validator(mode="after")
    def _one_action(self) -> ScriptStep:
        actions = ("value", "ramp_to", "fault", "garbage")
        chosen = [k for k in actions if getattr(self, k) is not None]
        if len(chosen) != 1:
            raise ValueError(f"a step needs exactly one of {', '.join(actions)} (got {chosen})")
        changes_metric = chosen[0] in ("value", "ramp_to")
        if changes_metric != (self.metric is not None):
            raise ValueError("metric goes with value/ramp_to, and only with them")
        if self.over_s and self.ramp_to is None:
            raise ValueError("over_s goes with ramp_to")
        if self.for_s is not None and self.fault in (None, "none"):
            raise ValueError("for_s goes with a fault")
        return self


class ScenarioSensor(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    slave: Annotated[int, Field(ge=1, le=247)]
    profile: str
    values: dict[str, float] = {}
    noise: NonNegative = 0.0
    script: list[ScriptStep] = []
    loop_s: Annotated[float, Field(gt=0)] | None = None

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> ScenarioSensor:
        if self.loop_s is not None:
            # A fault must also heal within its round, so every round's events stay in order.
            loop_s = self.loop_s
            late = [s.at for s in self.script if s.at >= loop_s or s.at + (s.for_s or 0) > loop_s]
            if late:
                raise ValueError(f"loop_s {loop_s} must follow every step and its for_s ({late})")
        context: dict[str, Any] = info.context or {}
        try:
            profile = load_modbus_profile(self.profile, context.get("profiles_dir"))
        except (FileNotFoundError, ValueError) as exc:
            raise ValueError(str(exc)) from None
        known = {r.metric for r in profile.registers}
        named = set(self.values) | {s.metric for s in self.script if s.metric is not None}
        if named - known:
            unknown = sorted(named - known)
            raise ValueError(f"profile {self.profile} lacks metric {unknown} (has {sorted(known)})")
        return self


class Scenario(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    sensors: Annotated[list[ScenarioSensor], Field(min_length=1)]

    @model_validator(mode="after")
    def _unique_slaves(self) -> Scenario:
        slaves = [s.slave for s in self.sensors]
        if len(set(slaves)) != len(slaves):
            raise ValueError(f"each slave id may appear once (got {slaves})")
        return self

    def simulated_sensors(self) -> list[SimulatedSensor]:
        return [SimulatedSensor(s.slave, s.profile, dict(s.values), s.noise) for s in self.sensors]


def load_scenario(path: Path, profiles_dir: Path | None = None) -> Scenario:
    """Raises gridsense_protocol.yamlconfig.ConfigError naming file:line: key.path."""
    return load_yaml_file(path, Scenario, context={"profiles_dir": profiles_dir})


@dataclass(frozen=True)
class TimelineEvent:
    """Something to do to one slave ``at`` seconds after the scenario starts."""

    at: float
    slave: int
    kind: Literal["ramp", "fault", "garbage"]
    metric: str | None = None
    value: float | None = None  # ramp target (over_s == 0 sets it at once)
    over_s: float = 0.0
    fault: FaultMode | None = None
    nbytes: int = 0

    def apply(self, sim: ModbusSensorSimulator) -> None:
        if self.kind == "ramp":
            assert self.metric is not None and self.value is not None
            sim.ramp(self.slave, self.metric, self.value, self.over_s)
        elif self.kind == "fault":
            sim.set_fault(self.slave, self.fault)
        else:
            sim.garbage(self.nbytes)


def _events_of(step: ScriptStep, slave: int, offset: float) -> list[TimelineEvent]:
    at = offset + step.at
    if step.garbage is not None:
        return [TimelineEvent(at, slave, "garbage", nbytes=step.garbage)]
    if step.fault is not None:
        mode: FaultMode | None = None if step.fault == "none" else step.fault
        events = [TimelineEvent(at, slave, "fault", fault=mode)]
        if step.for_s is not None:
            events.append(TimelineEvent(at + step.for_s, slave, "fault", fault=None))
        return events
    target = step.value if step.value is not None else step.ramp_to
    return [TimelineEvent(at, slave, "ramp", metric=step.metric, value=target, over_s=step.over_s)]


def _sensor_timeline(sensor: ScenarioSensor) -> Iterator[TimelineEvent]:
    """A sorted, possibly endless stream (``loop_s`` repeats the script)."""
    rounds = itertools.count() if sensor.loop_s is not None else iter([0])
    for n in rounds:
        offset = n * (sensor.loop_s or 0.0)
        events = [e for step in sensor.script for e in _events_of(step, sensor.slave, offset)]
        if not events:
            return
        # Validation keeps every event of round n inside [n*loop_s, (n+1)*loop_s].
        yield from sorted(events, key=lambda e: e.at)


def timeline(scenario: Scenario) -> Iterator[TimelineEvent]:
    """All sensors' events merged in time order; endless if any sensor loops."""
    return heapq.merge(*(_sensor_timeline(s) for s in scenario.sensors), key=lambda e: e.at)


class ScenarioPlayer:
    """Applies a scenario's timeline to a running simulator in real time, on the caller's thread."""

    def __init__(self, scenario: Scenario, simulator: ModbusSensorSimulator) -> None:
        self.scenario = scenario
        self.simulator = simulator

    def play(self, stop: threading.Event, duration_s: float | None = None) -> None:
        """Returns when ``stop`` is set or ``duration_s`` has passed; after a finite script the
        sensors keep their last values until then."""
        started = time.monotonic()
        end = None if duration_s is None else started + duration_s
        for event in timeline(self.scenario):
            due = started + event.at
            if end is not None and due > end:
                break
            if stop.wait(max(0.0, due - time.monotonic())):
                return
            try:
                event.apply(self.simulator)
            except (KeyError, ValueError, RuntimeError) as exc:  # one bad step must not end a demo
                log.error(
                    "event=scenario_step_failed at=%s slave=%s error=%s", event.at, event.slave, exc
                )
                continue
            log.info(
                "event=scenario_step at=%s slave=%s kind=%s metric=%s value=%s fault=%s",
                event.at,
                event.slave,
                event.kind,
                event.metric,
                event.value,
                event.fault,
            )
        stop.wait(None if end is None else max(0.0, end - time.monotonic()))
