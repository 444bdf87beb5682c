"""The NATS cluster drill: two gateways stream over MQTT 3.1.1 through a balancer into a
three-node NATS cluster; two server processes share the stream through one durable JetStream
consumer. In the middle of the stream the node leading the telemetry stream and one server are
killed with -9 (neither comes back). Afterwards the surviving server holds every sequence number
each gateway assigned (the project's checker: no gaps, no series gap longer than the fault),
every incident event the gateways raised is stored, and no live stream paged an incident twice.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from nats_stack import GATEWAYS, NatsStack, pg_database

from gridsense_devtools.processes import wait_until

STEADY_S = 8.0
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[NatsStack]:
    try:
        database = pg_database()
        url = database.__enter__()
    except Exception as exc:  # psycopg.OperationalError and friends
        pytest.skip(f"PostgreSQL at 127.0.0.1:5432 is unreachable: {exc}")
    running = NatsStack(tmp_path, url)
    try:
        running.start()
        wait_until(running.flowing, 90, "readings from every point of both gateways")
        yield running
    finally:
        running.stop()
        database.__exit__(None, None, None)


def settle(stack: NatsStack, seconds: float, allowed_dead: tuple[str, ...] = ()) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if dead := [name for name in stack.dead() if name not in allowed_dead]:
            raise AssertionError(f"{', '.join(dead)} died\n{stack.logs()}")
        time.sleep(0.5)


def test_a_node_and_a_server_killed_mid_stream_lose_nothing_and_page_once(
    stack: NatsStack,
) -> None:
    settle(stack, STEADY_S)
    # Both servers take a share of the stream (one durable consumer, two pullers).
    wait_until(lambda: all(server.counter("ingest.settled") > 0 for server in stack.servers),
               30, "both servers settling messages")
    leader = stack.stream_leader()
    stack.cluster.kill(leader)
    stack.servers[0].kill9()
    settle(stack, STEADY_S, allowed_dead=("server-1",))

    survivor = 1
    for gateway in GATEWAYS:
        upto = stack.latest_health_seq(gateway)
        assert upto is not None, stack.logs()
        last: dict = {}

        def complete(gateway: str = gateway, upto: int = upto) -> bool:
            nonlocal last
            code, last = stack.check(gateway, 3, survivor)
            found = {g["gateway"]: g for g in last.get("gateways", [])}
            seq_last = found.get(gateway, {}).get("seq_last")
            return code == 0 and seq_last is not None and seq_last >= upto

        try:
            wait_until(complete, 240, f"{gateway}: every message up to seq {upto}, no gaps",
                       interval=2)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\nchecker: {last}\n{stack.logs()}") from None
        sent = stack.incident_event_ids_sent(gateway, upto)
        assert sent, f"{gateway}'s scenario should have raised incidents"
        stored = stack.incident_event_ids_stored(survivor)
        assert sent <= stored, f"{gateway}: incident events lost: {sorted(sent - stored)}"

    opened: set[str] = set()
    for stream in stack.streams:
        # (A gateway_offline incident is announced when opened and again when cleared.)
        pages = Counter(key for key in stream.pages() if key[1] == "opened")
        assert all(count == 1 for count in pages.values()), f"paged twice: {pages}"
        opened |= {incident for incident, _ in pages}
    assert opened, "the worker should have been paged"
    assert stack.servers[survivor].alive()
