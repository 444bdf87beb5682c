"""A real agent process whose temperature model cannot load: the Health message says so, and
the threshold rule still raises its incident over a real broker."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from edge_support import AgentProcess, MqttRecorder, wait_until, write_config

from gridsense_devtools.services import Mosquitto
from gridsense_edge.simulator import ModbusSensorSimulator, SimulatedSensor
from gridsense_protocol import Kind

GW = "gw-t1"


@pytest.fixture
def sensor(tmp_path: Path) -> Iterator[ModbusSensorSimulator]:
    sensors = [SimulatedSensor(1, "xy-md02", {"temperature": 22.0, "humidity": 45.0})]
    with ModbusSensorSimulator(tmp_path / "ttySIM0", sensors, seed=3) as sim:
        yield sim


def test_a_model_that_cannot_load_leaves_the_threshold_working(
    tmp_path: Path, mosquitto: Mosquitto, sensor: ModbusSensorSimulator,
    agents: Callable[[Path], AgentProcess],
) -> None:
    recorder = MqttRecorder(mosquitto.port).start()
    try:
        agents(write_config(tmp_path / "gateway.yaml", {
            "gateway": {"id": GW, "state_dir": "./state"},
            "mqtt": {"host": "127.0.0.1", "port": mosquitto.port, "keepalive_s": 10},
            "health": {"interval_s": 1},
            "buses": [{"id": "rs485-0", "port": "./ttySIM0", "timeout_s": 0.4}],
            "devices": [{"type": "modbus_temperature", "point": f"{GW}.boiler",
                         "bus": "rs485-0", "profile": "xy-md02", "poll_interval_s": 0.2}],
            "rules": [
                {"type": "temperature_anomaly", "model": "./no-such-model.onnx"},
                {"type": "over_temperature", "threshold": 60, "min_duration_s": 1},
            ],
        }))

        def model_down() -> list[Any]:
            return [h for h in recorder.messages(Kind.HEALTH)
                    if "rule/temperature_anomaly" in h.drivers]

        health = wait_until(model_down, 60, what="health with the model's state")[-1]
        flag = health.drivers["rule/temperature_anomaly"]
        assert flag.state.value == "down" and "no-such-model.onnx" in (flag.detail or "")
        sensor.set_value(1, "temperature", 75.0)
        hot = wait_until(lambda: [i for i in recorder.messages(Kind.INCIDENT)
                                  if i.type == "over_temperature"], 60,
                         what="over_temperature incident")
        assert hot[0].point == f"{GW}.boiler" and hot[0].value == 75.0
    finally:
        recorder.stop()
