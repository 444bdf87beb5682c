"""Nothing lost: the agent as a real process against a broker that goes away, a link that goes
dark, and its own kill -9 — checked by a subscriber that records every sequence number.

What is checked, every time: the numbers of the messages that went through the outbox
(everything but status) form one contiguous range — no gap — with duplicates allowed but
counted; each lane arrives in order; what waited is flagged ``backfill``.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from edge_support import (
    AgentProcess,
    BlackholeProxy,
    MqttRecorder,
    wait_until,
    write_config,
)

from gridsense_devtools.ports import free_port
from gridsense_devtools.services import Mosquitto
from gridsense_edge.simulator import ModbusSensorSimulator, SimulatedSensor
from gridsense_edge.transport.outbox import SqliteOutbox
from gridsense_edge.transport.publisher import Publisher
from gridsense_protocol import GatewayState, Kind, Reading

GW = "gw-r1"
# The broker limits the fault tests use: room for a backlog, a receive maximum of 100.
BROKER_LIMITS = ["max_queued_messages 200000", "max_inflight_messages 100"]


def gateway_config(folder: Path, mqtt_port: int) -> Path:
    return write_config(folder / "gateway.yaml", {
        "gateway": {"id": GW, "state_dir": "./state"},
        "mqtt": {"host": "127.0.0.1", "port": mqtt_port, "keepalive_s": 5},
        "health": {"interval_s": 1},
        "buses": [{"id": "rs485-0", "port": "./ttySIM0", "timeout_s": 0.4}],
        "devices": [
            {"type": "modbus_temperature", "point": f"{GW}.s{n}", "bus": "rs485-0", "slave": n,
             "profile": "xy-md02", "poll_interval_s": 0.2, "report_deadband": 0.05,
             "refresh_interval_s": 1}
            for n in (1, 2)
        ],
        "rules": [{"type": "over_temperature", "points": ["*"], "threshold": 60,
                   "hysteresis": 2, "min_duration_s": 0.5, "severity": "major"}],
    })


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    mosquitto = Mosquitto(tmp_path / "mosquitto", free_port(), extra_config=BROKER_LIMITS,
                          persistence=True).start()
    yield mosquitto
    mosquitto.resume()
    mosquitto.stop()


@pytest.fixture
def simulator(tmp_path: Path) -> Iterator[ModbusSensorSimulator]:
    sensors = [SimulatedSensor(n, "xy-md02", {"temperature": 22.0, "humidity": 45.0}, noise=0.3)
               for n in (1, 2)]
    with ModbusSensorSimulator(tmp_path / "ttySIM0", sensors, seed=5) as sim:
        yield sim


@pytest.fixture
def recorders() -> Iterator[Callable[..., MqttRecorder]]:
    made: list[MqttRecorder] = []

    def make(port: int, persistent: bool = True) -> MqttRecorder:
        made.append(MqttRecorder(port, persistent=persistent).start())
        return made[-1]

    yield make
    for recorder in made:
        recorder.stop()


def outbox_messages(recorder: MqttRecorder) -> list[Any]:
    """Everything numbered by the outbox, in arrival order (status carries, not takes, seq)."""
    with recorder._lock:
        received = list(recorder.received)
    return [r.message() for r in received if r.kind is not Kind.STATUS]


def check_no_gaps(messages: list[Any], first: int = 0) -> int:
    """Asserts the seqs form first..max without a hole; returns the number of duplicates."""
    seqs = [m.seq for m in messages]
    missing = sorted(set(range(first, max(seqs) + 1)) - set(seqs))
    assert not missing, f"{len(missing)} seq missing, first {missing[:10]}"
    return len(seqs) - len(set(seqs))


def check_lane_order(messages: list[Any]) -> None:
    """Per lane, the first arrival of each seq comes in increasing order."""
    for lane in ({Kind.INCIDENT}, {Kind.TELEMETRY, Kind.HEALTH}):
        seen: set[int] = set()
        firsts = []
        for m in messages:
            if m.kind in lane and m.seq not in seen:
                seen.add(m.seq)
                firsts.append(m.seq)
        assert firsts == sorted(firsts), f"out of order in lane {lane}"


def test_a_broker_outage_is_buffered_and_replayed_in_order_with_backfill(
    tmp_path: Path, broker: Mosquitto, simulator: ModbusSensorSimulator,
    agents: Callable[[Path], AgentProcess], recorders: Callable[..., MqttRecorder],
) -> None:
    recorder = recorders(broker.port)
    agent = agents(gateway_config(tmp_path, broker.port))
    wait_until(lambda: len(recorder.of_kind(Kind.TELEMETRY)) >= 3, 60, what="live telemetry")

    broker.stop()
    down_at = datetime.now(UTC)
    wait_until(lambda: "mqtt_disconnected" in agent.log(), 30, what="the agent noticing")
    simulator.set_value(1, "temperature", 75.0)  # an incident raised while offline
    wait_until(lambda: "event=incident" in agent.log(), 30, what="the offline incident")
    time.sleep(6)  # let the outage last: a backlog of telemetry and health builds up
    up_at = datetime.now(UTC)
    broker.start()

    def caught_up() -> bool:
        return any(m.ts > up_at + timedelta(seconds=2) for m in
                   outbox_messages(recorder) if m.kind is Kind.TELEMETRY)

    wait_until(caught_up, 90, what="telemetry from after the restart")
    messages = outbox_messages(recorder)
    duplicates = check_no_gaps(messages)
    check_lane_order(messages)
    print(f"messages={len(messages)} duplicates={duplicates}")

    # What was produced during the outage came late and says so; live data does not.
    waited = [m for m in messages if down_at + timedelta(seconds=1) < m.ts < up_at]
    assert len(waited) >= 5 and all(m.backfill for m in waited)
    assert any(not m.backfill for m in messages if m.ts < down_at)  # live ones are not
    [incident] = [m for m in messages if m.kind is Kind.INCIDENT]
    assert incident.backfill and down_at < incident.ts < up_at
    assert agent.proc.poll() is None


def prefill_backlog(state_dir: Path, count: int) -> None:
    """Messages the agent finds in its outbox at start, as if a long outage had just ended."""
    outbox = SqliteOutbox(state_dir)
    publisher = Publisher(GW, outbox)
    start = datetime.now(UTC) - timedelta(hours=1)
    for n in range(count):
        ts = start + timedelta(milliseconds=100 * n)
        publisher.telemetry([Reading(point=f"{GW}.s1", metric="temperature",
                                     value=20 + n % 50 / 10, unit="°C", ts=ts)])
    outbox.close()


def test_kill_9_while_a_backlog_drains_leaves_no_gap(
    tmp_path: Path, broker: Mosquitto, simulator: ModbusSensorSimulator,
    agents: Callable[[Path], AgentProcess], recorders: Callable[..., MqttRecorder],
) -> None:
    backlog = 20_000
    config = gateway_config(tmp_path, broker.port)
    prefill_backlog(tmp_path / "state", backlog)
    recorder = recorders(broker.port)
    first = agents(config)
    wait_until(lambda: len(recorder.received) >= backlog // 4, 120, what="the drain under way")
    first.stop(signal.SIGKILL)
    killed_at = len(recorder.received)

    agents(config)

    def drained() -> bool:
        seqs = {m.seq for m in outbox_messages(recorder)}
        return len(seqs) > backlog + 10 and set(range(backlog)) <= seqs

    wait_until(drained, 180, what="the whole backlog and fresh data")
    messages = outbox_messages(recorder)
    duplicates = check_no_gaps(messages)
    check_lane_order(messages)
    print(f"killed after {killed_at} messages; received={len(messages)} "
          f"duplicates={duplicates}")
    assert duplicates <= 1000  # at most what was in flight or acked-but-not-yet-deleted
    assert all(m.backfill for m in messages if m.seq < backlog)


def test_a_dark_link_is_noticed_by_keepalive_and_the_agent_recovers(
    tmp_path: Path, broker: Mosquitto, simulator: ModbusSensorSimulator,
    agents: Callable[[Path], AgentProcess], recorders: Callable[..., MqttRecorder],
) -> None:
    proxy = BlackholeProxy(broker.port)
    try:
        recorder = recorders(broker.port, persistent=False)
        agent = agents(gateway_config(tmp_path, proxy.port))
        wait_until(lambda: len(recorder.of_kind(Kind.TELEMETRY)) >= 3, 60, what="telemetry")

        proxy.cut()
        cut_at = datetime.now(UTC)
        # Both ends notice through keepalive alone: the broker publishes the last will...
        wait_until(lambda: recorder.messages(Kind.STATUS)[-1].state is GatewayState.OFFLINE,
                   60, what="the broker's keepalive firing the will")
        # ...and the agent drops the connection and keeps retrying into the dark.
        wait_until(lambda: "mqtt_disconnected" in agent.log(), 60, what="agent keepalive")
        connects_before = agent.log().count("event=mqtt_connected")
        time.sleep(5)  # a few reconnect attempts hang in the dark link
        restored_at = datetime.now(UTC)
        proxy.restore()

        wait_until(lambda: agent.log().count("event=mqtt_connected") > connects_before, 90,
                   what="the agent reconnecting after the link came back")
        wait_until(lambda: any(m.ts > restored_at + timedelta(seconds=2)
                               for m in recorder.messages(Kind.TELEMETRY)), 60,
                   what="fresh telemetry")
        wait_until(lambda: recorder.messages(Kind.STATUS)[-1].state is GatewayState.ONLINE, 30)
        messages = outbox_messages(recorder)
        duplicates = check_no_gaps(messages)
        check_lane_order(messages)
        print(f"messages={len(messages)} duplicates={duplicates}")
        waited = [m for m in messages
                  if cut_at + timedelta(seconds=1) < m.ts < restored_at - timedelta(seconds=1)]
        assert waited and all(m.backfill for m in waited)
        assert agent.proc.poll() is None
    finally:
        proxy.close()
