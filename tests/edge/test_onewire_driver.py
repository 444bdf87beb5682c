"""The 1-Wire DS18B20 driver on a generated sysfs tree: good reads, CRC failures skipped and
counted, the 85 °C power-on value dropped, a newer kernel's `temperature` file, a sensor that
is unplugged and comes back."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from gridsense_edge.config import load_config
from gridsense_edge.configtypes import default_profiles_dir
from gridsense_edge.drivers import DRIVERS, DriverContext
from gridsense_edge.drivers.onewire.driver import OneWireTemperatureConfig
from gridsense_edge.drivers.onewire.w1 import Outcome, parse_w1_slave
from gridsense_protocol import DriverState, Reading
from gridsense_protocol.yamlconfig import ConfigError

SCRATCHPAD = "72 01 4b 46 7f ff 0e 10 57"


def write_sensor(base: Path, sensor: str, milli: int, crc_ok: bool = True) -> None:
    folder = base / sensor
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / "w1_slave.tmp"  # the kernel's file changes at once, never half-written
    tmp.write_text(f"{SCRATCHPAD} : crc=57 {'YES' if crc_ok else 'NO'}\n"
                   f"{SCRATCHPAD} t={milli}\n")
    tmp.replace(folder / "w1_slave")


async def until(condition: Callable[[], object], what: str, within_s: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


@pytest.mark.parametrize(("text", "expected"), [
    (f"{SCRATCHPAD} : crc=57 YES\n{SCRATCHPAD} t=23125\n", (Outcome.OK, 23.125)),
    (f"{SCRATCHPAD} : crc=57 YES\n{SCRATCHPAD} t=-10062\n", (Outcome.OK, -10.062)),
    (f"{SCRATCHPAD} : crc=12 NO\n{SCRATCHPAD} t=23125\n", (Outcome.CRC_ERROR, None)),
    (f"{SCRATCHPAD} : crc=57 YES\n", (Outcome.GARBLED, None)),
    (f"{SCRATCHPAD} : crc=57 YES\n{SCRATCHPAD} t=2x3\n", (Outcome.GARBLED, None)),
    ("", (Outcome.GARBLED, None)),
])
def test_parse_w1_slave(text: str, expected: tuple[Outcome, float | None]) -> None:
    assert parse_w1_slave(text) == expected


async def test_a_generated_sysfs_tree(tmp_path: Path) -> None:
    base = tmp_path / "w1" / "devices"
    write_sensor(base, "28-000000000001", 23125)
    write_sensor(base, "28-000000000002", 24000, crc_ok=False)
    write_sensor(base, "28-000000000003", 85000)  # just powered on
    newer = base / "28-000000000004"
    newer.mkdir(parents=True)
    (newer / "temperature").write_text("-1250\n")
    points = {f"28-00000000000{n}": f"gw-w1.s{n}" for n in range(1, 6)}  # 5 is not plugged in
    configs = [OneWireTemperatureConfig(type="onewire_temperature", point=point, sensor=sensor,
                                        base_path=base, poll_interval_s=0.05,
                                        refresh_interval_s=3600)
               for sensor, point in points.items()]
    seen: list[tuple[Reading, bool]] = []
    ctx = DriverContext(gateway="gw-w1", emit=lambda r, report: seen.append((r, report)),
                        buses={}, profiles_dir=default_profiles_dir(),
                        raise_incident=lambda *a, **k: "")
    [driver] = DRIVERS.get("onewire_temperature").factory(configs, ctx)

    def values(point: str) -> list[float]:
        return [r.value for r, _ in seen if r.point == point]

    task = asyncio.create_task(driver.run())
    try:
        await until(lambda: values("gw-w1.s1") and values("gw-w1.s4")
                    and driver.counters["crc_error"] >= 2 and driver.counters["power_on"] >= 2
                    and driver.counters["missing"] >= 1, "every sensor read at least once")
        assert set(values("gw-w1.s1")) == {23.125} and set(values("gw-w1.s4")) == {-1.25}
        assert values("gw-w1.s2") == [] and values("gw-w1.s3") == [] and values("gw-w1.s5") == []
        assert [report for r, report in seen if r.point == "gw-w1.s1"][:2] == [True, False]
        health = driver.health()
        assert health.state is DriverState.DEGRADED
        assert health.devices == {"gw-w1.s1": "ok", "gw-w1.s2": "crc_error",
                                  "gw-w1.s3": "power_on", "gw-w1.s4": "ok",
                                  "gw-w1.s5": "missing"}
        assert {r.unit for r, _ in seen} == {"°C"}

        # The CRC clears, the sensor finishes its first conversion, the fifth is plugged in.
        write_sensor(base, "28-000000000002", 24000)
        write_sensor(base, "28-000000000003", 21500)
        write_sensor(base, "28-000000000005", 5062)
        await until(lambda: values("gw-w1.s2") and values("gw-w1.s3") and values("gw-w1.s5"),
                    "the three sensors answering", within_s=90)
        assert values("gw-w1.s3")[0] == 21.5 and 85.0 not in values("gw-w1.s3")
        assert values("gw-w1.s5")[0] == 5.062
        # Real heat climbing through 85 °C is kept: it comes from a reading close by.
        write_sensor(base, "28-000000000003", 84500)
        await until(lambda: 84.5 in values("gw-w1.s3"), "84.5 °C")
        write_sensor(base, "28-000000000003", 85000)
        await until(lambda: 85.0 in values("gw-w1.s3"), "85 °C after 84.5 °C")
        write_sensor(base, "28-000000000001", 130000)  # beyond a DS18B20's range
        await until(lambda: driver.counters["implausible"] >= 1, "an implausible reading")
        assert 130.0 not in values("gw-w1.s1")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@pytest.mark.parametrize(("entry", "message"), [
    ("sensor: 10-000000000001", "sensor family '10' is not the profile's ('28')"),
    ("sensor: 28-000000000001\n    profile: ds18s20", "no 1-Wire device profile 'ds18s20'"),
    ("sensor: 28-xyz", "sensor"),
])
def test_config_errors_name_the_key(tmp_path: Path, entry: str, message: str) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text("gateway: {id: gw-w1, state_dir: ./state}\ndevices:\n"
                      f"  - type: onewire_temperature\n    point: gw-w1.s1\n    {entry}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    assert message in str(caught.value) and "devices[0]" in str(caught.value)
