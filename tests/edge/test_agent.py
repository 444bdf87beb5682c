"""The agent as a real process: `gridsense-edge run` + simulated sensors + a private Mosquitto.

A subscriber checks what arrives on the wire: telemetry with increasing seq, the retained
online status, one incident per excursion, the last will after a kill -9, and data that flows
once a broker that was down at start comes up.
"""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from edge_support import AgentProcess, MqttRecorder, wait_until, write_config

from gridsense_devtools.ports import free_port
from gridsense_devtools.services import Mosquitto
from gridsense_edge.simulator import ModbusSensorSimulator, SimulatedSensor
from gridsense_protocol import AlarmState, GatewayState, Kind

GW = "gw-a1"


def gateway_config(folder: Path, mqtt_port: int, sensors: int = 3,
                   protocol: str = "5") -> Path:
    return write_config(folder / "gateway.yaml", {
        "gateway": {"id": GW, "state_dir": "./state"},
        "mqtt": {"host": "127.0.0.1", "port": mqtt_port, "keepalive_s": 10,
                 "protocol": protocol},
        "health": {"interval_s": 1},
        "buses": [{"id": "rs485-0", "port": "./ttySIM0", "timeout_s": 0.4}],
        "devices": [
            {"type": "modbus_temperature", "point": f"{GW}.s{n}", "bus": "rs485-0", "slave": n,
             "profile": "xy-md02", "poll_interval_s": 0.2, "refresh_interval_s": 1}
            for n in range(1, sensors + 1)
        ],
        "rules": [
            {"type": "over_temperature", "points": ["*"], "threshold": 60, "hysteresis": 2,
             "min_duration_s": 1, "severity": "major"},
            {"type": "rapid_rise", "points": [f"{GW}.s3"], "rate_per_min": 30, "window_s": 6,
             "severity": "critical"},
        ],
    })


@pytest.fixture
def simulator(tmp_path: Path) -> Iterator[ModbusSensorSimulator]:
    sensors = [SimulatedSensor(n, "xy-md02", {"temperature": 22.0, "humidity": 45.0})
               for n in (1, 2, 3)]
    with ModbusSensorSimulator(tmp_path / "ttySIM0", sensors, seed=3) as sim:
        yield sim


@pytest.fixture
def recorders() -> Iterator[Callable[[int], MqttRecorder]]:
    made: list[MqttRecorder] = []

    def make(port: int) -> MqttRecorder:
        made.append(MqttRecorder(port).start())
        return made[-1]

    yield make
    for recorder in made:
        recorder.stop()


def statuses(recorder: MqttRecorder) -> list[Any]:
    return recorder.messages(Kind.STATUS)


def incidents(recorder: MqttRecorder, point: str, type_: str) -> list[Any]:
    return [i for i in recorder.messages(Kind.INCIDENT) if i.point == point and i.type == type_]


def test_agent_end_to_end_with_a_real_broker(
    tmp_path: Path, mosquitto: Mosquitto, simulator: ModbusSensorSimulator,
    agents: Callable[[Path], AgentProcess], recorders: Callable[[int], MqttRecorder],
) -> None:
    recorder = recorders(mosquitto.port)
    agent = agents(gateway_config(tmp_path, mosquitto.port))

    # Birth: retained Status(online) for this gateway.
    wait_until(lambda: any(s.state is GatewayState.ONLINE for s in statuses(recorder)), 60,
               what="Status(online)")
    late = recorders(mosquitto.port)  # a subscriber arriving later gets the retained status
    wait_until(lambda: late.of_kind(Kind.STATUS), what="retained status")
    first = late.of_kind(Kind.STATUS)[0]
    assert first.retain and first.message().state is GatewayState.ONLINE

    # Telemetry with increasing seq and the simulator's values.
    wait_until(lambda: len(recorder.of_kind(Kind.TELEMETRY)) >= 3, 60, what="3 telemetry")
    assert recorder.readings(f"{GW}.s1")[0].value == 22.0
    assert {r.unit for r in recorder.readings(f"{GW}.s1", "humidity")} == {"%RH"}

    # Heat one sensor above 60 °C: exactly one over_temperature incident, active.
    simulator.set_value(2, "temperature", 75.0)
    wait_until(lambda: incidents(recorder, f"{GW}.s2", "over_temperature"), 60,
               what="over_temperature incident")
    hot_before = sum(1 for r in recorder.readings(f"{GW}.s2") if r.value == 75.0)
    wait_until(lambda: sum(1 for r in recorder.readings(f"{GW}.s2") if r.value == 75.0)
               >= hot_before + 3, 60, what="more hot readings after the incident")
    [active] = incidents(recorder, f"{GW}.s2", "over_temperature")
    assert active.state is AlarmState.ACTIVE and active.value == 75.0 and active.threshold == 60
    assert active.severity.value == "major"
    assert not incidents(recorder, f"{GW}.s1", "over_temperature")

    # Cool it down: cleared, pointing at the event that raised it.
    simulator.set_value(2, "temperature", 30.0)
    wait_until(lambda: len(incidents(recorder, f"{GW}.s2", "over_temperature")) == 2, 60,
               what="cleared incident")
    cleared = incidents(recorder, f"{GW}.s2", "over_temperature")[1]
    assert cleared.state is AlarmState.CLEARED and cleared.details["active_event"] == active.id

    # A steep ramp on s3: rapid_rise.
    simulator.ramp(3, "temperature", 50.0, over_s=8)
    wait_until(lambda: incidents(recorder, f"{GW}.s3", "rapid_rise"), 60, what="rapid_rise")
    assert incidents(recorder, f"{GW}.s3", "rapid_rise")[0].severity.value == "critical"

    # Health: drivers and counters.
    def healthy() -> Any:
        return [h for h in recorder.messages(Kind.HEALTH)
                if h.drivers.get("modbus_temperature/rs485-0")
                and h.drivers["modbus_temperature/rs485-0"].state.value == "ok"
                and h.counters.get("published", 0) > 0]

    health = wait_until(healthy, 60, what="a health message")[-1]
    assert health.memory_rss_bytes > 0 and health.disk_free_bytes > 0
    assert set(health.drivers["modbus_temperature/rs485-0"].devices.values()) == {"ok"}
    assert health.counters["dropped"] == 0 and health.counters["invalid_readings"] == 0
    # The outbox reports itself: depth per lane, oldest unsent, bytes, the incident lane's state.
    for key in ("outbox_incident_depth", "outbox_bulk_depth", "outbox_oldest_age_s",
                "outbox_bytes_on_disk", "outbox_incident_lane_full", "mqtt_inflight"):
        assert key in health.counters, key
    assert health.counters["outbox_bytes_on_disk"] > 0
    assert health.counters["outbox_incident_lane_full"] == 0

    # Every message has its own seq; telemetry arrives in seq order.
    everything = [r.message() for r in recorder.received if r.kind is not Kind.STATUS]
    seqs = [m.seq for m in everything]
    assert len(set(seqs)) == len(seqs)
    telemetry_seqs = [t.seq for t in recorder.messages(Kind.TELEMETRY)]
    assert telemetry_seqs == sorted(telemetry_seqs)

    # kill -9: the broker publishes the retained last will, Status(offline).
    agent.stop(signal.SIGKILL)
    wait_until(lambda: statuses(recorder)[-1].state is GatewayState.OFFLINE, 60, what="will")
    after = recorders(mosquitto.port)
    wait_until(lambda: after.of_kind(Kind.STATUS), what="retained will")
    will = after.of_kind(Kind.STATUS)[0]
    assert will.retain and will.message().state is GatewayState.OFFLINE


def test_graceful_stop_says_offline_and_a_restart_continues_the_sequence(
    tmp_path: Path, mosquitto: Mosquitto, simulator: ModbusSensorSimulator,
    agents: Callable[[Path], AgentProcess], recorders: Callable[[int], MqttRecorder],
) -> None:
    recorder = recorders(mosquitto.port)
    config = gateway_config(tmp_path, mosquitto.port)
    agent = agents(config)
    wait_until(lambda: len(recorder.of_kind(Kind.TELEMETRY)) >= 2, 60, what="telemetry")
    assert agent.stop(signal.SIGTERM) == 0
    wait_until(lambda: statuses(recorder)[-1].state is GatewayState.OFFLINE, 30, what="offline")
    assert "agent_stopped" in agent.log()
    first_run = [r.message() for r in recorder.received]
    first_seqs = [m.seq for m in first_run if m.kind is not Kind.STATUS]
    # Status messages carry the latest number without taking one.
    assert statuses(recorder)[-1].seq == max(first_seqs)

    agents(config)
    wait_until(lambda: len(statuses(recorder)) >= 3 and statuses(recorder)[-1].state
               is GatewayState.ONLINE, 60, what="second birth")
    wait_until(lambda: len(recorder.of_kind(Kind.TELEMETRY)) >= 4, 60, what="more telemetry")
    second_run = [r.message() for r in recorder.received][len(first_run):]
    second_seqs = [m.seq for m in second_run if m.kind is not Kind.STATUS]
    # The numbers continue where the first run stopped: no gap, no reuse.
    assert sorted(first_seqs + second_seqs) == list(range(min(first_seqs), max(second_seqs) + 1))


def test_the_agent_starts_without_a_broker_and_delivers_once_it_is_up(
    tmp_path: Path, simulator: ModbusSensorSimulator,
    agents: Callable[[Path], AgentProcess], recorders: Callable[[int], MqttRecorder],
) -> None:
    broker = Mosquitto(tmp_path / "mosquitto", free_port())  # not started yet
    try:
        agent = agents(gateway_config(tmp_path, broker.port))
        wait_until(lambda: "mqtt_unreachable" in agent.log(), 60, what="the agent noticing")
        wait_until(lambda: "state=ok" in agent.log(), 60, what="polling while offline")
        broker_up_at = time.time()
        broker.start()
        recorder = recorders(broker.port)
        wait_until(lambda: recorder.of_kind(Kind.TELEMETRY), 90, what="telemetry after start")
        readings = recorder.readings(f"{GW}.s1")
        # What was read while the broker was down was buffered, not lost.
        assert min(r.ts.timestamp() for r in readings) < broker_up_at
        wait_until(lambda: any(s.state is GatewayState.ONLINE for s in statuses(recorder)), 30)

        # A broker restart: the agent reconnects by itself and announces itself again.
        broker.stop()
        broker.start()
        again = recorders(broker.port)
        wait_until(lambda: again.of_kind(Kind.TELEMETRY), 90, what="telemetry after restart")
        wait_until(lambda: any(s.state is GatewayState.ONLINE for s in statuses(again)), 30)
        assert agent.proc.poll() is None
    finally:
        broker.stop()


def test_agent_speaks_mqtt_3_1_1_when_configured(
    tmp_path: Path, mosquitto: Mosquitto, simulator: ModbusSensorSimulator,
    agents: Callable[[Path], AgentProcess], recorders: Callable[[int], MqttRecorder],
) -> None:
    """For brokers without MQTT 5 (nats-server): the same agent over 3.1.1, with a persistent
    session, publishes its birth and telemetry, and comes back after a broker restart."""
    recorder = recorders(mosquitto.port)
    agents(gateway_config(tmp_path, mosquitto.port, protocol="3.1.1"))
    wait_until(lambda: any(s.state is GatewayState.ONLINE for s in statuses(recorder)), 60,
               what="Status(online)")
    wait_until(lambda: len(recorder.of_kind(Kind.TELEMETRY)) >= 3, 60, what="3 telemetry")
    # Mosquitto's log names the protocol (p2: 3.1.1, p5: 5) and clean session (c0: off).
    assert re.search(rf"as {GW} \(p2, c0,", mosquitto.log_path.read_text(errors="replace")), \
        "the agent should have connected with MQTT 3.1.1 and a persistent session"
    mosquitto.stop()
    mosquitto.start()
    after = recorders(mosquitto.port)
    wait_until(lambda: len(after.of_kind(Kind.TELEMETRY)) >= 3, 90,
               what="telemetry again after the broker's restart")
