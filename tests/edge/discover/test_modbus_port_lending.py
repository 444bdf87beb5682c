"""A running Modbus driver lends its port to discovery over the agent's control socket: it
closes the port, discovery scans a quiet line, and the driver's readings resume after."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import stat
from pathlib import Path

from gridsense_devtools.processes import async_wait_until
from gridsense_edge.configtypes import default_profiles_dir
from gridsense_edge.discover.modbus_scan import ScanLimits, scan_modbus
from gridsense_edge.drivers import DRIVERS, DriverContext
from gridsense_edge.drivers.modbus.bus import BusConfig
from gridsense_edge.drivers.modbus.profiles import SerialDefaults, load_all_modbus_profiles
from gridsense_edge.drivers.modbus.temperature import ModbusTemperatureConfig
from gridsense_edge.portlease import (
    LENT,
    SOCKET_NAME,
    PortControlServer,
    PortLeases,
    borrow_port,
)
from gridsense_edge.simulator import ModbusSensorSimulator, SimulatedSensor
from gridsense_protocol import Reading


async def test_the_driver_lends_its_port_and_takes_it_back(tmp_path: Path) -> None:
    link, state = tmp_path / "ttyRS485", tmp_path / "state"
    state.mkdir()
    sensors = [SimulatedSensor(n, "xy-md02", {"temperature": 20.0 + n}) for n in (1, 2)]
    readings: list[Reading] = []
    with ModbusSensorSimulator(link, sensors, seed=1):
        # The agent names the port through another link: lending matches the real device.
        os.symlink(link, tmp_path / "by-id-name")
        context = DriverContext(
            gateway="gw", emit=lambda reading, _report: readings.append(reading),
            buses={"rs485-0": BusConfig(id="rs485-0", port=str(tmp_path / "by-id-name"),
                                        timeout_s=0.3)},
            profiles_dir=default_profiles_dir(), raise_incident=lambda *_a, **_k: "")
        configs = [ModbusTemperatureConfig(type="modbus_temperature", point=f"gw.s{n}",
                                           bus="rs485-0", slave=n, profile="xy-md02",
                                           poll_interval_s=0.1) for n in (1, 2)]
        [driver] = DRIVERS.get("modbus_temperature").factory(configs, context)
        control = PortControlServer(state, context.ports)
        await control.start()
        assert stat.S_IMODE((state / SOCKET_NAME).stat().st_mode) == 0o600
        task = asyncio.create_task(driver.run())
        try:
            await async_wait_until(lambda: len(readings) >= 4, 20, "readings before lending")

            def discover() -> tuple[list[str], object, int, int, str]:
                with borrow_port(state, str(link)) as holders:
                    at_start = len(readings)
                    scan = asyncio.run(scan_modbus(
                        str(link), SerialDefaults(), load_all_modbus_profiles(),
                        ScanLimits(ids=(1, 2, 3), per_id_s=0.3, overall_s=20)))
                    health = driver.health()
                    return holders, scan, at_start, len(readings), str(health.detail)

            holders, scan, at_start, at_end, detail = await asyncio.to_thread(discover)
            assert holders == ["modbus:rs485-0"]
            assert at_end == at_start  # the driver stayed off the line while it was lent
            assert LENT in detail
            # Nobody else talked on the line: every sensor answered cleanly.
            assert [(f.slave, f.answer) for f in scan.found] == [(1, "exception"),
                                                                  (2, "exception")]
            await async_wait_until(lambda: len(readings) > at_end + 2, 20,
                                   "readings after the port came back")
            bus = context.shared.get_or_create(("modbus_bus", "rs485-0"), lambda: None)
            assert bus is not None and bus.counters["opens"] == 2
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await control.stop()
            await context.shared.close()
    assert not (state / SOCKET_NAME).exists()


def test_without_a_running_agent_nothing_is_borrowed(tmp_path: Path) -> None:
    with borrow_port(tmp_path, "/dev/ttyUSB0") as holders:
        assert holders == []
    # A socket file a killed agent left behind: nobody answers, so nothing to borrow.
    import socket

    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(tmp_path / SOCKET_NAME))
    stale.close()
    with borrow_port(tmp_path, "/dev/ttyUSB0") as holders:
        assert holders == []


async def test_the_control_socket_answers_a_bad_request_and_an_unused_port(
        tmp_path: Path) -> None:
    control = PortControlServer(tmp_path, PortLeases())
    await control.start()
    try:
        reader, writer = await asyncio.open_unix_connection(str(tmp_path / SOCKET_NAME))
        writer.write(b"lend me everything\n")
        await writer.drain()
        answer = json.loads(await reader.readline())
        assert answer["ok"] is False and "bad request" in answer["error"]
        writer.close()

        def borrow() -> list[str]:
            with borrow_port(tmp_path, "/dev/ttyUSB9") as holders:
                return holders

        assert await asyncio.to_thread(borrow) == []  # the agent runs, nothing on that port
    finally:
        await control.stop()
