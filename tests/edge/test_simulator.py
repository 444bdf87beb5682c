"""The Modbus sensor simulator, checked from the outside with a real pymodbus serial client.

Everything a driver will meet on the link is exercised here: values round-tripping through the
device profiles, several slaves on one link, each fault mode, line noise, ramps, the scenario
file and the CLI process. Waits poll for a condition; nothing asserts on time taken.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pymodbus.client import ModbusSerialClient
from pymodbus.exceptions import ModbusIOException
from pymodbus.framer import FramerRTU

from gridsense_edge.drivers.modbus.profiles import RegisterMap, Table, load_modbus_profile
from gridsense_edge.simulator import ModbusSensorSimulator, SimulatedSensor
from gridsense_edge.simulator.null_modem import (
    FrameSplitter,
    append_crc,
    crc16_modbus,
    crc_ok,
    read_request,
    request_length,
    response_length,
)
from gridsense_edge.simulator.scenario import (
    Scenario,
    ScenarioPlayer,
    load_scenario,
    timeline,
)
from gridsense_protocol.yamlconfig import ConfigError, validate_yaml

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "firmware_configs" / "simulator" / "demo-boiler.yaml"
XY, PT100 = load_modbus_profile("xy-md02"), load_modbus_profile("pt100-transmitter")


def wait_until(condition: Callable[[], object], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(0.05)


def read_metric(client: ModbusSerialClient, slave: int, reg: RegisterMap) -> float:
    read = (
        client.read_input_registers if reg.table == Table.INPUT else client.read_holding_registers
    )
    response = read(reg.address, count=reg.count, device_id=slave)
    assert not response.isError(), response
    return reg.decode(response.registers)


def read_ok(client: ModbusSerialClient, slave: int, reg: RegisterMap) -> bool:
    try:
        read_metric(client, slave, reg)
    except (ModbusIOException, AssertionError):
        return False
    return True


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[ModbusSensorSimulator]:
    sensors = [
        SimulatedSensor(1, "xy-md02", {"temperature": 21.5, "humidity": 40.2}),
        SimulatedSensor(2, "pt100-transmitter", {"temperature": -12.34}),
    ]
    with ModbusSensorSimulator(tmp_path / "ttySIM0", sensors, seed=7) as simulator:
        yield simulator
    assert not os.path.lexists(tmp_path / "ttySIM0"), "stop() must remove the link"


@pytest.fixture
def client(sim: ModbusSensorSimulator) -> Iterator[ModbusSerialClient]:
    modbus = ModbusSerialClient(str(sim.link), baudrate=9600, timeout=1, retries=0)
    assert modbus.connect()
    yield modbus
    modbus.close()


# -- the wire format -----------------------------------------------------------------------


def test_crc16_matches_the_textbook_vector_and_pymodbus() -> None:
    assert append_crc(bytes.fromhex("010300000001")) == bytes.fromhex("010300000001840A")
    for body in (b"\x01\x04\x00\x01\x00\x02", bytes(range(40)), b"\xff" * 7):
        assert crc16_modbus(body).to_bytes(2, "little") == FramerRTU.compute_CRC(body).to_bytes(
            2, "big"
        )
        assert crc_ok(append_crc(body))
    assert not crc_ok(b"\x01\x03\x00\x00\x00\x01\x84\x0b")


def test_frame_lengths_follow_the_function_code() -> None:
    assert request_length(read_request(1, 4, 1, 2)) == 8
    assert request_length(b"\x01") == 0  # need more
    assert request_length(b"\x01\x63") == -1  # no such function
    assert response_length(b"\x01\x04\x04") == 9
    assert response_length(b"\x01\x84\x04") == 5


def test_splitter_passes_noise_and_keeps_a_partial_frame_until_flushed() -> None:
    frame = read_request(3, 3, 0, 2)
    splitter = FrameSplitter(request_length)
    out = splitter.feed(b"\x00\xff" + frame + frame[:5])
    assert out == [(False, b"\x00\xff"), (True, frame)]
    assert splitter.pending
    assert splitter.feed(b"", flush=True) == [(False, frame[:5])]
    assert splitter.feed(frame[:3]) == [] and splitter.feed(frame[3:]) == [(True, frame)]


# -- values --------------------------------------------------------------------------------


def test_values_read_back_through_both_profiles(
    sim: ModbusSensorSimulator, client: ModbusSerialClient
) -> None:
    temp, humidity = XY.register("temperature"), XY.register("humidity")
    pipe = PT100.register("temperature")
    assert read_metric(client, 1, temp) == pytest.approx(21.5, abs=0.05)
    assert read_metric(client, 1, humidity) == pytest.approx(40.2, abs=0.05)
    assert read_metric(client, 2, pipe) == pytest.approx(-12.34, abs=0.005)

    sim.set_value(1, "temperature", -7.3)
    sim.set_value(2, "temperature", 612.07)
    assert read_metric(client, 1, temp) == pytest.approx(-7.3, abs=0.05)
    assert read_metric(client, 2, pipe) == pytest.approx(612.07, abs=0.005)


def test_profile_address_is_the_request_address(client: ModbusSerialClient) -> None:
    """pymodbus' legacy data blocks shift addresses by one; the profile's N must be the wire's N."""
    temp = XY.register("temperature")
    both = client.read_input_registers(temp.address, count=2, device_id=1)
    assert both.registers == temp.encode(21.5) + XY.register("humidity").encode(40.2)
    below = client.read_input_registers(temp.address - 1, count=1, device_id=1)
    assert below.isError() and below.exception_code == 2  # illegal data address
    wrong_table = client.read_holding_registers(temp.address, count=1, device_id=1)
    assert wrong_table.isError() and wrong_table.exception_code == 2


def test_two_slaves_on_one_link_keep_their_own_values(
    sim: ModbusSensorSimulator, client: ModbusSerialClient
) -> None:
    sim.set_value(1, "temperature", 30.0)
    sim.set_value(2, "temperature", 80.0)
    for _ in range(3):
        assert read_metric(client, 1, XY.register("temperature")) == pytest.approx(30.0)
        assert read_metric(client, 2, PT100.register("temperature")) == pytest.approx(80.0)


def test_ramp_reaches_its_target(sim: ModbusSensorSimulator, client: ModbusSerialClient) -> None:
    temp = XY.register("temperature")
    sim.ramp(1, "temperature", 64.0, over_s=1.0)
    wait_until(lambda: read_metric(client, 1, temp) == pytest.approx(64.0))
    assert sim.value(1, "temperature") == 64.0


def test_noise_stays_within_its_bound(tmp_path: Path) -> None:
    sensor = SimulatedSensor(5, "xy-md02", {"temperature": 20.0}, noise=0.5)
    with ModbusSensorSimulator(tmp_path / "tty", [sensor], seed=1) as sim:
        modbus = ModbusSerialClient(str(sim.link), baudrate=9600, timeout=1, retries=0)
        assert modbus.connect()
        readings = [read_metric(modbus, 5, XY.register("temperature")) for _ in range(10)]
        modbus.close()
    assert all(19.45 <= r <= 20.55 for r in readings), readings
    assert len(set(readings)) > 1


def test_bad_controls_are_refused_with_a_reason(sim: ModbusSensorSimulator) -> None:
    with pytest.raises(ValueError, match="int16"):
        sim.set_value(1, "temperature", 5000.0)
    with pytest.raises(KeyError, match="slave 9"):
        sim.set_value(9, "temperature", 1.0)
    with pytest.raises(KeyError, match="pressure"):
        sim.ramp(2, "pressure", 1.0, 1.0)
    with pytest.raises(ValueError, match="fault mode"):
        sim.set_fault(1, "smoke")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="nbytes"):
        sim.garbage(0)


# -- faults --------------------------------------------------------------------------------


def test_unknown_slave_never_answers(client: ModbusSerialClient) -> None:
    with pytest.raises(ModbusIOException):
        client.read_input_registers(1, count=1, device_id=9)


def test_silent_slave_times_out_and_recovers(
    sim: ModbusSensorSimulator, client: ModbusSerialClient
) -> None:
    temp = XY.register("temperature")
    sim.set_fault(1, "silent")
    with pytest.raises(ModbusIOException):
        read_metric(client, 1, temp)
    assert read_metric(client, 2, PT100.register("temperature")) == pytest.approx(-12.34)
    sim.set_fault(1, None)
    assert read_metric(client, 1, temp) == pytest.approx(21.5)


def test_exception_fault_answers_device_failure(
    sim: ModbusSensorSimulator, client: ModbusSerialClient
) -> None:
    sim.set_fault(2, "exception")
    response = client.read_holding_registers(0, count=2, device_id=2)
    assert response.isError()
    assert response.function_code == 0x83 and response.exception_code == 4
    assert read_ok(client, 1, XY.register("temperature"))


def test_bad_crc_yields_no_valid_response(
    sim: ModbusSensorSimulator, client: ModbusSerialClient
) -> None:
    sim.set_fault(1, "bad_crc")
    with pytest.raises(ModbusIOException):
        client.read_input_registers(1, count=2, device_id=1)
    assert sim.counters["responses_corrupted"] >= 1
    sim.set_fault(1, None)
    assert read_ok(client, 1, XY.register("temperature"))


def test_garbage_on_the_line_does_not_kill_the_simulator(
    sim: ModbusSensorSimulator, client: ModbusSerialClient
) -> None:
    temp = XY.register("temperature")
    for _ in range(3):
        sim.garbage(200)
    wait_until(lambda: read_ok(client, 1, temp))
    assert sim.counters["noise_bytes_sent"] == 600
    assert read_metric(client, 1, temp) == pytest.approx(21.5)


# -- scenarios -----------------------------------------------------------------------------


def test_demo_scenario_is_valid_and_loops() -> None:
    scenario = load_scenario(DEMO)
    events = list(itertools.islice(timeline(scenario), 40))
    assert [e.at for e in events] == sorted(e.at for e in events)
    silent = [e for e in events if e.kind == "fault" and e.slave == 1]
    assert (silent[0].at, silent[0].fault) == (110, "silent")
    assert (silent[1].at, silent[1].fault) == (120, None)  # for_s heals the line
    first_ramps = [e.at for e in events if e.kind == "ramp" and e.slave == 1]
    assert first_ramps[:3] == [20, 70, 170]  # loop_s: 150 repeats the script


@pytest.mark.parametrize(
    ("text", "line", "path", "reason"),
    [
        (
            "sensors:\n  - slave: 1\n    profile: xy-md02\n    script:\n"
            "      - {at: 5, metric: temperature, ramp_to: 70}\n"
            "      - {at: 9, fault: smoke}\n",
            6,
            "sensors[0].script[1].fault",
            "silent",
        ),
        (
            "sensors:\n  - slave: 1\n    profile: xy-md02\n"
            "  - slave: 2\n    profile: xy-md02\n    values: {pressure: 3}\n",
            4,
            "sensors[1]",
            "pressure",
        ),
        ("sensors:\n  - slave: 1\n    profile: xy-md02\n    colour: red\n", 4, "colour", "unknown"),
        ("sensors:\n  - {slave: 1, profile: nope}\n", 2, "sensors[0]", "no Modbus device profile"),
    ],
)
def test_scenario_errors_name_the_line(text: str, line: int, path: str, reason: str) -> None:
    with pytest.raises(ConfigError) as caught:
        validate_yaml(text, "demo.yaml", Scenario)
    message = str(caught.value)
    assert message.startswith(f"demo.yaml:{line}: "), message
    assert path in message and reason in message


def test_player_applies_steps_in_time(
    sim: ModbusSensorSimulator, client: ModbusSerialClient
) -> None:
    scenario = validate_yaml(
        "sensors:\n  - slave: 1\n    profile: xy-md02\n    script:\n"
        "      - {at: 0, metric: humidity, value: 77.7}\n"
        "      - {at: 0.1, fault: exception}\n"
        "      - {at: 0.2, garbage: 16}\n",
        "inline.yaml",
        Scenario,
    )
    ScenarioPlayer(scenario, sim).play(threading.Event(), duration_s=0.5)
    assert sim.value(1, "humidity") == pytest.approx(77.7)
    assert sim.fault(1) == "exception"
    assert sim.counters["noise_bytes_sent"] == 16
    sim.set_fault(1, None)
    wait_until(lambda: read_ok(client, 1, XY.register("humidity")))
    assert read_metric(client, 1, XY.register("humidity")) == pytest.approx(77.7)


# -- the CLI process -----------------------------------------------------------------------


def _cli(*args: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "gridsense_edge.simulator.cli", "simulate", "modbus", *args]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_cli_serves_the_scenario_and_cleans_up_on_sigterm(tmp_path: Path) -> None:
    link = tmp_path / "ttyDEMO"
    process = _cli("--scenario", str(DEMO), "--link", str(link), "--json", "--seed", "3")
    try:
        wait_until(lambda: link.exists() or process.poll() is not None)
        assert process.poll() is None, process.communicate()
        modbus = ModbusSerialClient(str(link), baudrate=9600, timeout=1, retries=1)
        assert modbus.connect()
        assert read_metric(modbus, 1, XY.register("temperature")) == pytest.approx(22.0, abs=0.2)
        assert read_metric(modbus, 2, PT100.register("temperature")) == pytest.approx(55.0, abs=0.1)
        modbus.close()
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert '"event": "ready"' in out
    assert not os.path.lexists(link)


def test_cli_rejects_a_bad_scenario_with_exit_code_2(tmp_path: Path) -> None:
    scenario = tmp_path / "bad.yaml"
    scenario.write_text("sensors:\n  - slave: 300\n    profile: xy-md02\n", encoding="utf-8")
    process = _cli("--scenario", str(scenario), "--link", str(tmp_path / "tty"))
    _, err = process.communicate(timeout=60)
    assert process.returncode == 2
    assert f"{scenario}:2: sensors[0].slave" in err
    assert not os.path.lexists(tmp_path / "tty")


def test_start_replaces_a_stale_link_but_never_a_real_file(tmp_path: Path) -> None:
    link = tmp_path / "ttySIM0"
    link.symlink_to(tmp_path / "gone")  # what a kill -9 leaves behind
    with ModbusSensorSimulator(link, [SimulatedSensor(1, "xy-md02")]) as sim:
        assert os.readlink(link).startswith("/dev/pts/")
        assert sim.value(1, "humidity") == 50.0  # unset metrics start mid-range
    precious = tmp_path / "precious"
    precious.write_text("keep me", encoding="utf-8")
    with pytest.raises(RuntimeError, match="not a symlink"):
        ModbusSensorSimulator(precious, [SimulatedSensor(1, "xy-md02")]).start()
    assert precious.read_text(encoding="utf-8") == "keep me"
