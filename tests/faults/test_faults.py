"""Real faults under a steady stream: afterwards nothing lost, nothing doubled, no page twice.

Each test runs the whole system as processes (fault_stack.Stack), lets data flow, breaks one
part for real (kill -9, broker stop, InfluxDB stop, uplink cut), recovers, lets the backlog
drain, and then asks the project's checker (`gridsense-server check`) and the edge's own log:
- the server received every sequence number the gateway assigned (no gaps),
- every point's series in InfluxDB has no gap longer than the fault allows,
- every incident event the edge raised is stored exactly once,
- the worker's live stream paged each incident once.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gridsense_devtools.processes import wait_until

from fault_stack import GATEWAY, Stack
from tcp_proxy import CuttableProxy

# The issue asks for a ten-minute cut; GRIDSENSE_UPLINK_CUT_S shortens it while developing.
UPLINK_CUT_S = float(os.environ.get("GRIDSENSE_UPLINK_CUT_S", "600"))
INFLUX_DOWN_S = float(os.environ.get("GRIDSENSE_INFLUX_DOWN_S", "60"))
STEADY_S = 8.0

# Each test waits out its fault and then up to five minutes for the backlog to drain.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(INFLUX_DOWN_S + 900)]


def settle(stack: Stack, seconds: float) -> None:
    """Let the stream run, failing early if a process died."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if dead := stack.dead():
            raise AssertionError(f"{', '.join(dead)} died\n{stack.procs.logs()}")
        time.sleep(0.5)


def assert_nothing_lost(stack: Stack, max_gap_s: float) -> None:
    # The gateway keeps running. The sequence number of its latest health message is a point
    # every earlier message must have passed: wait until the server holds all of them.
    upto = stack.latest_health_seq()
    assert upto is not None, stack.procs.logs()
    last: dict = {}

    def complete() -> bool:
        nonlocal last
        code, last = stack.check(max_gap_s)
        gateways = {g["gateway"]: g for g in last.get("gateways", [])}
        seq_last = gateways.get(GATEWAY, {}).get("seq_last")
        return code == 0 and seq_last is not None and seq_last >= upto

    try:
        wait_until(complete, 300, f"every message up to seq {upto} without gaps", interval=2)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nchecker: {last}\n{stack.procs.logs()}") from None

    sent = stack.incident_event_ids_sent(upto)
    assert sent, "the scenario should have raised incidents"
    stored = stack.incident_event_ids_stored()
    assert sent <= stored, f"incident events lost: {sorted(sent - stored)}"

    assert stack.stream is not None
    pages = Counter(stack.stream.pages())
    opened = [key for key in pages if key[1] == "opened"]
    assert opened, "the worker should have been paged"
    assert all(pages[key] == 1 for key in opened), f"duplicate pages: {pages}"


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    running = Stack(tmp_path).start()
    try:
        wait_until(running.flowing, 60, "readings from every point in InfluxDB")
        yield running
    finally:
        running.stop()


def run_fault(stack: Stack, fault: Callable[[], None]) -> None:
    settle(stack, STEADY_S)
    fault()
    settle(stack, STEADY_S)


def test_edge_killed_and_restarted(stack: Stack) -> None:
    def fault() -> None:
        assert stack.edge is not None
        stack.edge.kill9()
        stack.start_edge()

    run_fault(stack, fault)
    # The series may pause for the agent's restart (no reading is made while it is dead).
    assert_nothing_lost(stack, max_gap_s=20)


def test_broker_stopped_and_restarted(stack: Stack) -> None:
    def fault() -> None:
        stack.broker.stop()
        time.sleep(10)
        stack.broker.start()

    run_fault(stack, fault)
    assert_nothing_lost(stack, max_gap_s=3)


def test_influxdb_down(stack: Stack) -> None:
    def fault() -> None:
        stack.influx.stop()
        time.sleep(INFLUX_DOWN_S)
        stack.influx.start()

    run_fault(stack, fault)
    assert_nothing_lost(stack, max_gap_s=3)


def kill_and_restart_server(stack: Stack) -> None:
    def fault() -> None:
        assert stack.server is not None
        stack.server.kill9()
        time.sleep(5)
        stack.start_server()

    run_fault(stack, fault)
    assert_nothing_lost(stack, max_gap_s=3)


def test_server_killed_and_restarted(stack: Stack) -> None:
    kill_and_restart_server(stack)


@pytest.mark.timeout(UPLINK_CUT_S + 900)
def test_uplink_cut(tmp_path: Path) -> None:
    stack = Stack(tmp_path)
    with CuttableProxy(stack.broker.port) as proxy:
        stack.uplink_port = proxy.port
        stack.start()
        try:
            wait_until(stack.flowing, 60, "readings from every point in InfluxDB")

            def fault() -> None:
                proxy.cut()
                time.sleep(UPLINK_CUT_S)
                proxy.restore()

            run_fault(stack, fault)
            assert_nothing_lost(stack, max_gap_s=3)
        finally:
            stack.stop()


@pytest.fixture
def shared_stack(tmp_path: Path) -> Iterator[Stack]:
    running = Stack(tmp_path, shared=True).start()
    try:
        wait_until(running.flowing, 60, "readings from every point in InfluxDB")
        yield running
    finally:
        running.stop()


def test_broker_lost_with_shared_subscriptions(shared_stack: Stack) -> None:
    """kill -9 of the server; the broker queues the stream for its offline session; then the
    broker is lost too — kill -9 and its persistence file gone, as when a cluster node is
    replaced: what it had acknowledged to the gateway and held for the server dies with it.
    The gateway keeps every message until the server confirms it and sends again what stays
    unconfirmed: nothing is lost, and what the broker lost arrived as re-sends. (With the
    gateway deleting on the PUBACK, ``mqtt.acknowledgement: broker``, this drill loses data.)"""
    stack = shared_stack

    def fault() -> None:
        assert stack.server is not None
        stack.server.kill9()
        time.sleep(4)  # the broker acknowledges the stream and holds it for the server
        stack.broker.kill()
        for saved in stack.broker.directory.glob("*.db"):
            saved.unlink()  # the node's state is gone with it
        time.sleep(2)
        stack.broker.start()
        stack.start_server()

    run_fault(stack, fault)
    assert_nothing_lost(stack, max_gap_s=3)
    edge_log = (stack.tmp / "edge.log").read_text(errors="replace")
    assert "event=unconfirmed_resent" in edge_log, "the lost messages should have been re-sent"


def test_server_killed_with_shared_subscriptions(shared_stack: Stack) -> None:
    kill_and_restart_server(shared_stack)
