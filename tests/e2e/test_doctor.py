"""``gridsense-edge doctor`` on real parts: a Mosquitto with the dynamic-security plugin, a
Modbus sensor simulator on a pseudo-terminal, an HTTP server whose clock is off. A healthy
set-up passes; deliberately broken ones (wrong password, missing serial port, a silent
device, an unreachable broker, a bad config, a wrong clock) name each fault and exit 1."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from broker_support import DynsecBroker, start_dynsec_broker

from gridsense_devtools.files import write_secret
from gridsense_devtools.ports import free_port
from gridsense_devtools.processes import BIN, env_without_proxies
from gridsense_edge.simulator import ModbusSensorSimulator, SimulatedSensor
from gridsense_server.broker import Role

GATEWAY, PASSWORD = "gw-doc", "gw-doc-password-secret"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[DynsecBroker]:
    running = start_dynsec_broker(tmp_path / "broker")
    with running.accounts() as accounts:
        accounts.add(GATEWAY, Role.GATEWAY, PASSWORD)
    yield running
    running.broker.stop()


@pytest.fixture
def sensor_line(tmp_path: Path) -> Iterator[Path]:
    link = tmp_path / "ttyRS485"
    sim = ModbusSensorSimulator(link, [SimulatedSensor(1, "xy-md02", {"temperature": 21.5,
                                                                     "humidity": 40.0})],
                                seed=1).start()
    yield link
    sim.stop()


def write_config(tmp: Path, *, port: int, password: str, buses: list[dict[str, Any]],
                 devices: list[dict[str, Any]]) -> Path:
    write_secret(tmp / "mqtt.password", password + "\n")
    config = tmp / "gateway.yaml"
    config.write_text(yaml.safe_dump({
        "gateway": {"id": GATEWAY, "state_dir": str(tmp / "state")},
        "mqtt": {"host": "127.0.0.1", "port": port, "password_file": str(tmp / "mqtt.password")},
        "buses": buses, "devices": devices}))
    (tmp / "state").mkdir(exist_ok=True)
    return config


def sensor(point: str, bus: str, slave: int) -> dict[str, Any]:
    return {"type": "modbus_temperature", "point": f"{GATEWAY}.{point}", "bus": bus,
            "slave": slave, "profile": "xy-md02"}


def doctor(config: Path, *extra: str) -> tuple[int, dict[str, dict[str, Any]]]:
    result = subprocess.run([str(BIN / "gridsense-edge"), "doctor", "--config", str(config),
                             "--json", *extra], capture_output=True, text=True, timeout=120,
                            env=env_without_proxies(), check=False)
    report = json.loads(result.stdout)
    return result.returncode, {f["check"]: f for f in report["findings"]}


def test_a_healthy_gateway_passes(tmp_path: Path, broker: DynsecBroker,
                                  sensor_line: Path) -> None:
    config = write_config(tmp_path, port=broker.port, password=PASSWORD,
                          buses=[{"id": "rs485", "port": str(sensor_line)}],
                          devices=[sensor("t1", "rs485", 1)])
    code, found = doctor(config)
    assert code == 0, found
    assert {name: f["status"] for name, f in found.items()} == {
        "config": "ok", "clock": "skipped", "disk": "ok", "serial:rs485": "ok", "broker": "ok",
        f"device:{GATEWAY}.t1": "ok", "outbox": "ok"}


def test_a_broken_gateway_names_each_fault(tmp_path: Path, broker: DynsecBroker,
                                           sensor_line: Path) -> None:
    config = write_config(
        tmp_path, port=broker.port, password="not-the-password",
        buses=[{"id": "rs485", "port": str(sensor_line)},
               {"id": "gone", "port": str(tmp_path / "ttyUSB9")}],
        devices=[sensor("t1", "rs485", 1), sensor("silent", "rs485", 9),
                 sensor("far", "gone", 2)])
    code, found = doctor(config)
    assert code == 1
    assert found["broker"]["status"] == "fault" and "refused" in found["broker"]["detail"]
    assert "password" in found["broker"]["fix"]
    assert found["serial:gone"]["status"] == "fault"
    assert "no such device" in found["serial:gone"]["detail"]
    assert found[f"device:{GATEWAY}.silent"]["status"] == "fault"
    assert found[f"device:{GATEWAY}.far"]["status"] == "fault"
    assert found[f"device:{GATEWAY}.t1"]["status"] == "ok"  # one fault hides no other result
    assert all(f["fix"] for f in found.values() if f["status"] == "fault")


def test_an_unreachable_broker_and_a_bad_config_are_named(tmp_path: Path) -> None:
    config = write_config(tmp_path, port=free_port(), password=PASSWORD, buses=[], devices=[])
    code, found = doctor(config)
    assert code == 1 and found["broker"]["detail"].startswith("unreachable"), found
    text = config.read_text().replace("password_file", "pasword_file")
    config.write_text(text)
    code, found = doctor(config)
    assert code == 1 and found["config"]["status"] == "fault"
    assert "pasword_file" in found["config"]["detail"]


class _LateClock(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()

    def date_time_string(self, timestamp: float | None = None) -> str:
        return formatdate(time.time() + 3600, usegmt=True)  # this server is an hour ahead

    def log_message(self, *_args: object) -> None:
        pass


def test_a_clock_far_from_the_servers_is_a_fault(tmp_path: Path) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _LateClock)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        config = write_config(tmp_path, port=free_port(), password=PASSWORD, buses=[],
                              devices=[])
        _, found = doctor(config, "--server", f"http://127.0.0.1:{server.server_port}")
    finally:
        server.shutdown()
    assert found["clock"]["status"] == "fault", found["clock"]
    assert "+3600" in found["clock"]["detail"] or "+3599" in found["clock"]["detail"]
