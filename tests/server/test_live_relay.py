"""The live relay between server processes on a real PostgreSQL: events cross, a large one in
parts, one over the cap is dropped and counted, a process never gets its own back, another
schema does not hear it, and a listener whose connection is killed comes back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest
from server_helpers import async_wait_until

from gridsense_server.counters import Counters
from gridsense_server.live.relay import MAX_EVENT_BYTES, PART_BYTES, PgRelay, conninfo

pytestmark = pytest.mark.postgres


class Node:
    def __init__(self, url: str, name: str) -> None:
        self.got: list[dict[str, Any]] = []
        self.counters = Counters()
        self.gaps = 0
        self.relay = PgRelay(url, self.counters, self.got.append, origin=name,
                             on_gap=self._gap)

    def _gap(self) -> None:
        self.gaps += 1


@pytest.fixture
async def nodes(pg_url: str) -> AsyncIterator[tuple[Node, Node]]:
    a, b = Node(pg_url, "a"), Node(pg_url, "b")
    for node in (a, b):
        await node.relay.start()
        await asyncio.wait_for(node.relay.listening.wait(), 30)
    yield a, b
    for node in (a, b):
        await node.relay.stop()


def message(text: str) -> dict[str, Any]:
    return {"k": "grid", "g": "g01", "live": True,
            "e": {"type": "incident", "event": "opened", "incident": {"id": "x", "note": text}}}


async def test_events_cross_whole_and_in_parts_and_never_come_back(
        nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    small, large = message("锅炉房"), message("超温" * (PART_BYTES * 3))  # ~6 bytes a pair
    a.relay.send(small)
    a.relay.send(large)
    b.relay.send(message("from b"))
    await async_wait_until(lambda: len(b.got) == 2 and len(a.got) == 1, 30, "both delivered")
    assert b.got == [small, large]
    assert a.got == [message("from b")]
    assert a.counters.get("live.relay_sent") == 2


async def test_an_event_over_the_cap_is_dropped_and_counted(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    a.relay.send(message("x" * (MAX_EVENT_BYTES + 1)))
    a.relay.send(message("after"))
    await async_wait_until(lambda: b.got, 30, "the next one delivered")
    assert b.got == [message("after")]
    assert a.counters.get("live.relay_too_large") == 1


async def test_a_listener_whose_connection_dies_listens_again(
        nodes: tuple[Node, Node], pg_url: str) -> None:
    a, b = nodes
    with psycopg.connect(conninfo(pg_url), autocommit=True) as admin:
        killed = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE query LIKE 'LISTEN%%' AND pid <> pg_backend_pid() "
            "AND datname = current_database()").fetchall()
    assert killed
    await async_wait_until(lambda: b.counters.get("live.relay_gaps") >= 1, 60,
                           "b listening again")
    assert b.gaps >= 1  # its streams are told to re-read what they may have missed
    a.relay.send(message("after the cut"))
    await async_wait_until(lambda: message("after the cut") in b.got, 30, "delivered after")


async def test_another_schema_hears_nothing(nodes: tuple[Node, Node], pg_url: str) -> None:
    a, b = nodes
    other_schema = pg_url.rsplit("%3D", 1)[0] + "%3Dpublic"
    other = Node(other_schema, "other")
    await other.relay.start()
    try:
        await asyncio.wait_for(other.relay.listening.wait(), 30)
        a.relay.send(message("only for this schema"))
        await async_wait_until(lambda: b.got, 30, "b got it")
        other.relay.send(message("public"))
        await async_wait_until(lambda: other.counters.get("live.relay_sent") == 1, 30, "sent")
        await asyncio.sleep(0.5)
        assert other.got == [] and b.got == [message("only for this schema")]
    finally:
        await other.relay.stop()
