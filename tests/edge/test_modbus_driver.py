"""The Modbus driver against the real simulator: real RTU frames on a pseudo-terminal.

Faults are injected on the wire by the simulator (a silent sensor, a Modbus exception, a
corrupted CRC, line noise); each must show up in health under its own name while the other
sensors on the same bus keep being read.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import gridsense_edge.drivers.modbus.temperature as modbus_temperature
from gridsense_edge.agent import cancel_and_wait
from gridsense_edge.configtypes import default_profiles_dir
from gridsense_edge.drivers import DriverContext
from gridsense_edge.drivers.modbus.bus import BusConfig
from gridsense_edge.drivers.modbus.temperature import (
    ModbusTemperatureConfig,
    ModbusTemperatureDriver,
)
from gridsense_edge.simulator import ModbusSensorSimulator, SimulatedSensor
from gridsense_protocol import DriverState, Reading

GW = "gw-t"


async def until(predicate: Callable[[], Any], limit_s: float = 30.0, what: str = "") -> Any:
    """Poll ``predicate`` on the loop until truthy (never a fixed sleep as an assertion)."""
    deadline = asyncio.get_running_loop().time() + limit_s
    while not (result := predicate()):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {limit_s}s waiting for {what or predicate}")
        await asyncio.sleep(0.05)
    return result


class Harness:
    """One driver on one bus, its samples recorded."""

    @staticmethod
    def _no_incidents(event: object) -> str:
        raise AssertionError(f"a temperature driver raised an incident itself: {event}")

    def __init__(self, link: Path, devices: list[dict[str, Any]], timeout_s: float = 0.4) -> None:
        self.samples: list[tuple[Reading, bool]] = []
        bus = BusConfig(id="rs485-0", port=str(link), timeout_s=timeout_s)
        self.context = DriverContext(
            gateway=GW, emit=lambda r, report: self.samples.append((r, report)),
            buses={"rs485-0": bus}, profiles_dir=default_profiles_dir(),
            raise_incident=self._no_incidents,
        )
        configs = [
            ModbusTemperatureConfig.model_validate(
                {"type": "modbus_temperature", "bus": "rs485-0", "poll_interval_s": 0.1, **d}
            )
            for d in devices
        ]
        [driver] = modbus_temperature.create(configs, self.context)
        assert isinstance(driver, ModbusTemperatureDriver)
        self.driver = driver
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self.driver.run())

    async def stop(self) -> None:
        if self.task is not None:
            await cancel_and_wait([self.task])
            assert self.task.done(), "the driver did not stop when cancelled"
        await self.context.shared.close()

    def values(self, point: str, metric: str = "temperature") -> list[float]:
        return [r.value for r, _ in self.samples if r.point == point and r.metric == metric]

    def states(self) -> dict[str, str]:
        return self.driver.health().devices


@pytest.fixture
def sims() -> Iterator[list[ModbusSensorSimulator]]:
    started: list[ModbusSensorSimulator] = []
    yield started
    for sim in started:
        sim.stop()


def start_sim(
    sims: list[ModbusSensorSimulator], link: Path, sensors: list[SimulatedSensor]
) -> ModbusSensorSimulator:
    sim = ModbusSensorSimulator(link, sensors, seed=1)
    sims.append(sim)
    return sim.start()


@pytest.fixture
async def harnesses() -> AsyncIterator[list[Harness]]:
    made: list[Harness] = []
    yield made
    for harness in made:
        await harness.stop()


def xy(slave: int, temperature: float = 21.5, humidity: float = 40.2) -> SimulatedSensor:
    return SimulatedSensor(slave, "xy-md02", {"temperature": temperature, "humidity": humidity})


async def test_readings_arrive_decoded_per_profile(
    tmp_path: Path, sims: list[ModbusSensorSimulator], harnesses: list[Harness]
) -> None:
    link = tmp_path / "ttySIM0"
    start_sim(sims, link, [xy(1), SimulatedSensor(2, "pt100-transmitter", {"temperature": 123.45})])
    harness = Harness(link, [
        {"point": f"{GW}.room", "slave": 1, "profile": "xy-md02"},
        {"point": f"{GW}.pipe", "slave": 2, "profile": "pt100-transmitter"},
    ])
    harnesses.append(harness)
    harness.start()
    await until(lambda: harness.values(f"{GW}.room") and harness.values(f"{GW}.pipe"), what="both")
    await until(lambda: harness.values(f"{GW}.room", "humidity"), what="humidity")
    assert harness.values(f"{GW}.room")[0] == 21.5
    assert harness.values(f"{GW}.room", "humidity")[0] == 40.2
    assert harness.values(f"{GW}.pipe")[0] == 123.45
    first = next(r for r, _ in harness.samples if r.point == f"{GW}.pipe")
    assert first.unit == "°C" and first.ts.tzinfo is not None
    health = harness.driver.health()
    assert health.state is DriverState.OK
    assert health.devices == {f"{GW}.room": "ok", f"{GW}.pipe": "ok"}


async def test_deadband_and_periodic_refresh(
    tmp_path: Path, sims: list[ModbusSensorSimulator], harnesses: list[Harness]
) -> None:
    link = tmp_path / "ttySIM0"
    sim = start_sim(sims, link, [xy(1)])
    harness = Harness(link, [{
        "point": f"{GW}.room", "slave": 1, "profile": "xy-md02", "metrics": ["temperature"],
        "report_deadband": 0.2, "refresh_interval_s": 1.0,
    }])
    harnesses.append(harness)
    harness.start()
    await until(lambda: len(harness.samples) >= 25, what="25 samples")
    reported = [report for _, report in harness.samples]
    assert reported[0] is True  # the first value is always reported
    assert sum(reported) < len(reported) / 2  # a steady value is not reported every poll
    sim.set_value(1, "temperature", 22.0)  # beyond the deadband
    await until(lambda: 22.0 in harness.values(f"{GW}.room"), what="22.0")
    first_new = next(report for r, report in harness.samples if r.value == 22.0)
    assert first_new is True
    assert all(r.metric == "temperature" for r, _ in harness.samples)


async def test_faults_are_named_in_health_and_never_stall_the_other_sensors(
    tmp_path: Path, sims: list[ModbusSensorSimulator], harnesses: list[Harness],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(modbus_temperature, "FAILING_POLL_CAP_S", 1.0)  # quick recovery below
    link = tmp_path / "ttySIM0"
    sim = start_sim(sims, link, [xy(1), xy(2), xy(3), xy(4)])
    sim.set_fault(2, "silent")
    sim.set_fault(3, "exception")
    sim.set_fault(4, "bad_crc")
    harness = Harness(link, [
        {"point": f"{GW}.s{n}", "slave": n, "profile": "xy-md02"} for n in (1, 2, 3, 4)
    ])
    harnesses.append(harness)
    harness.start()
    expected = {
        f"{GW}.s1": "ok", f"{GW}.s2": "timeout", f"{GW}.s3": "exception code 4",
        f"{GW}.s4": "crc error",
    }
    await until(lambda: harness.states() == expected, what=f"states {expected}")
    health = harness.driver.health()
    assert health.state is DriverState.DEGRADED
    for counter in ("timeouts", "exceptions", "crc_errors", "bus_timeouts", "bus_crc_errors"):
        assert health.counters[counter] >= 1, counter
    # The healthy sensor keeps being read while the three broken ones fail.
    before = len(harness.values(f"{GW}.s1"))
    await until(lambda: len(harness.values(f"{GW}.s1")) >= before + 15, what="15 more from s1")
    assert not harness.values(f"{GW}.s2") and not harness.values(f"{GW}.s3")
    assert not harness.values(f"{GW}.s4")
    for slave in (2, 3, 4):
        sim.set_fault(slave, None)
    await until(lambda: set(harness.states().values()) == {"ok"}, 60, what="all ok again")
    await until(lambda: harness.values(f"{GW}.s4"), what="s4 readings after healing")
    assert harness.driver.health().state is DriverState.OK


async def test_garbage_on_the_line_is_counted_and_reading_continues(
    tmp_path: Path, sims: list[ModbusSensorSimulator], harnesses: list[Harness]
) -> None:
    link = tmp_path / "ttySIM0"
    sim = start_sim(sims, link, [xy(1), xy(2)])
    harness = Harness(link, [
        {"point": f"{GW}.s{n}", "slave": n, "profile": "xy-md02"} for n in (1, 2)
    ])
    harnesses.append(harness)
    harness.start()
    await until(lambda: harness.values(f"{GW}.s1") and harness.values(f"{GW}.s2"))

    def noticed() -> int:
        c = harness.driver.health().counters
        return sum(c[k] for k in ("bus_unsolicited_bytes", "bus_bad_frames", "bus_crc_errors",
                                  "bus_timeouts"))

    for _ in range(20):
        await asyncio.to_thread(sim.garbage, 64)
        await asyncio.sleep(0.03)
    await until(noticed, what="garbage noticed in health counters")
    counts = {n: len(harness.values(f"{GW}.s{n}")) for n in (1, 2)}
    await until(
        lambda: all(len(harness.values(f"{GW}.s{n}")) >= counts[n] + 10 for n in (1, 2)),
        what="both sensors read after the noise",
    )
    await until(lambda: set(harness.states().values()) == {"ok"}, what="both ok")
    assert all(v == 21.5 for v in harness.values(f"{GW}.s1"))  # noise never became a value


async def test_implausible_values_are_rejected_counted_and_logged(
    tmp_path: Path, sims: list[ModbusSensorSimulator], harnesses: list[Harness],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="gridsense_edge")
    link = tmp_path / "ttySIM0"
    sim = start_sim(sims, link, [xy(1)])
    harness = Harness(link, [{"point": f"{GW}.room", "slave": 1, "profile": "xy-md02"}])
    harnesses.append(harness)
    harness.start()
    await until(lambda: harness.values(f"{GW}.room"))
    sim.set_value(1, "temperature", 300.0)  # XY-MD02 valid range is -40..125
    await until(lambda: harness.states()[f"{GW}.room"] == "implausible", what="implausible")
    humidity_before = len(harness.values(f"{GW}.room", "humidity"))
    await until(lambda: len(harness.values(f"{GW}.room", "humidity")) > humidity_before + 3)
    assert 300.0 not in harness.values(f"{GW}.room")
    health = harness.driver.health()
    assert health.counters["implausible"] >= 1 and health.state is DriverState.DEGRADED
    [record] = [r for r in caplog.records if r.getMessage() == "implausible_reading"][:1]
    fields = record.gridsense_fields  # type: ignore[attr-defined]
    assert fields["point"] == f"{GW}.room" and fields["metric"] == "temperature"
    assert fields["raw"] == "[0x0bb8]" and fields["value"] == 300.0
    sim.set_value(1, "temperature", 30.0)
    await until(lambda: harness.states()[f"{GW}.room"] == "ok", what="ok again")


async def test_a_missing_port_is_reported_down_and_picked_up_when_it_appears(
    tmp_path: Path, sims: list[ModbusSensorSimulator], harnesses: list[Harness]
) -> None:
    link = tmp_path / "ttyLATE"
    harness = Harness(link, [{"point": f"{GW}.room", "slave": 1, "profile": "xy-md02"}])
    harnesses.append(harness)
    harness.start()

    def down() -> bool:
        health = harness.driver.health()
        return health.state is DriverState.DOWN and "no such device" in (health.detail or "")

    await until(down, what="bus reported down")
    assert harness.states() == {f"{GW}.room": "bus down"}
    assert harness.driver.health().counters["bus_connect_failures"] >= 1
    await asyncio.to_thread(start_sim, sims, link, [xy(1)])
    await until(lambda: harness.values(f"{GW}.room"), 60, what="readings once the port exists")
    assert harness.driver.health().state is DriverState.OK

    # The adapter vanishes while open (USB unplugged), then comes back.
    await asyncio.to_thread(sims.pop().stop)
    await until(lambda: harness.driver.health().state is DriverState.DOWN, what="down again")
    count = len(harness.values(f"{GW}.room"))
    await asyncio.to_thread(start_sim, sims, link, [xy(1, temperature=33.3)])
    await until(lambda: 33.3 in harness.values(f"{GW}.room")[count:], 60, what="back")
