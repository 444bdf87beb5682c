"""One card granted at two gateways' doors within the window: the server's ``card_two_places``
incident, over a real broker and server (access events in, the incident API and the live
stream out)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from conftest import ServerFactory
from server_helpers import EdgePublisher, async_wait_until

from gridsense_protocol import AccessEvent, AccessResult
from gridsense_server.live.hub import Subscription
from gridsense_server.registry.viewers import Viewer

T0 = datetime(2026, 11, 25, 8, 0, 0, tzinfo=UTC)


def _grant(edge: EdgePublisher, point: str, door: str, credential: str, second: float,
           result: AccessResult = AccessResult.GRANTED, backfill: bool = False) -> AccessEvent:
    return AccessEvent(gateway=edge.gateway, seq=edge.next_seq(), backfill=backfill,
                       ts=T0 + timedelta(seconds=second), point=point, door=door,
                       result=result, method="card", credential=credential,
                       card="0123456789abcdef",
                       reason=None if result is AccessResult.GRANTED else "revoked")


async def _next_incident(subscription: Subscription) -> dict[str, Any]:
    while True:
        event = await asyncio.wait_for(subscription.next(), 30)
        if event["type"] == "incident":
            return event


async def test_one_card_at_two_gateways_within_the_window_opens_one_incident(
    start_server: ServerFactory, edge: EdgePublisher
) -> None:
    server = await start_server(extra_yaml="access_correlation:\n  window_s: 90\n")
    control = server.hub.subscribe(Viewer("control", "control", None))
    g01 = server.hub.subscribe(Viewer("worker-g01", "worker", frozenset({"g01-a"})))
    g02 = server.hub.subscribe(Viewer("worker-g02", "worker", frozenset({"g02"})))
    other = EdgePublisher(edge.port, "gw-02")
    try:
        second_place = _grant(other, "gw-02.boiler", "b2-main", "alice", 75)
        for publisher, event in (
            (edge, _grant(edge, "gw-01.boiler", "b1-main", "alice", 0)),
            # same gateway, two doors, seconds apart: walking through a building
            (edge, _grant(edge, "gw-01.boiler", "b1-back", "carol", 10)),
            (edge, _grant(edge, "gw-01.boiler", "b1-main", "carol", 20)),
            # two gateways, but further apart than the window
            (edge, _grant(edge, "gw-01.boiler", "b1-main", "bob", 30)),
            (other, _grant(other, "gw-02.boiler", "b2-main", "bob", 130)),
            # refused at the other place: not a use of the card
            (other, _grant(other, "gw-02.boiler", "b2-main", "carol", 40,
                           AccessResult.DENIED)),
            (other, second_place),  # alice, 75 s after building 1: the clone
            (other, second_place),  # redelivered: the same event, no second count
        ):
            publisher.publish(event)
        await async_wait_until(
            lambda: server.counters.get("access.stored") >= 7, 30, "seven access events")
        event = await _next_incident(control)
        assert event["event"] == "opened"
        incident = event["incident"]
        assert incident["type"] == "card_two_places"
        assert incident["point"] == "gw-02.boiler" and incident["grid"] == "g02"
        assert incident["message"].startswith("同一凭证 alice 在 75 秒内于两处通行")
        assert "b1-main（gw-01）" in incident["message"] and "a cloned card?" in incident["message"]
        assert incident["value"] == 75 and incident["threshold"] == 90
        assert server.counters.get("access.card_two_places") == 1
        assert (await _next_incident(g02))["incident"]["id"] == incident["id"]

        # The clone again at building 2: the open incident there repeats.
        other.publish(_grant(other, "gw-02.boiler", "b2-main", "alice", 85))
        repeat = await _next_incident(control)
        assert repeat["event"] == "updated" and repeat["incident"]["id"] == incident["id"]
        assert (await _next_incident(g02))["event"] == "updated"
        assert repeat["incident"]["count"] == 2
        # Then back at building 1: an incident at that door, paged to building 1's grid.
        edge.publish(_grant(edge, "gw-01.boiler", "b1-main", "alice", 140))
        there = await _next_incident(g01)
        assert there["event"] == "opened" and there["incident"]["point"] == "gw-01.boiler"
        assert (await _next_incident(control))["incident"]["id"] == there["incident"]["id"]
        # A pair replayed after an outage: recorded, shown to control, paged to no one.
        edge.publish(_grant(edge, "gw-01.boiler", "b1-main", "dave", 600, backfill=True))
        other.publish(_grant(other, "gw-02.boiler", "b2-main", "dave", 630, backfill=True))
        old = await _next_incident(control)
        assert old["event"] == "backfilled" and old["incident"]["count"] == 3
        assert old["incident"]["message"].startswith("同一凭证 dave")
        assert len(g02) == 0  # building 2's staff saw the live ones, not this
        assert server.http_url is not None
        async with httpx.AsyncClient(base_url=server.http_url, trust_env=False,
                                     timeout=30) as http:
            token = (await http.post("/api/v1/auth/token", json={
                "username": "control", "password": "ctl"})).json()["access_token"]
            listed = (await http.get("/api/v1/incidents", params={"state": "open"},
                                     headers={"Authorization": f"Bearer {token}"})).json()
        pairs = [i for i in listed if i["type"] == "card_two_places"]
        assert sorted((i["point"], i["count"]) for i in pairs) == [
            ("gw-01.boiler", 1), ("gw-02.boiler", 3)]
        assert pairs[0]["accept_due_at"] is not None  # the SLA clock of any incident runs
    finally:
        other.close()
