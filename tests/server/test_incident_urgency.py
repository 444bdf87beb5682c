"""The incident list in urgency order (overdue first, then severity, then the time left to the
running deadline), finished work hidden by default, the filters and paging — on SQLite and
PostgreSQL, where NULL deadlines sort differently unless the query says where they go."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
from api_client import Api
from server_helpers import EdgePublisher, async_wait_until
from sqlalchemy import update

from gridsense_protocol import utc_now
from gridsense_server.db.models import Incident

# (point, type) → severity, state, and the running deadline in seconds from now (None: none
# runs — resolved work waits for verification, closed work is finished).
CASES: dict[tuple[str, str], tuple[str, str, int | None]] = {
    ("gw-01.boiler", "over_temperature"): ("critical", "new", 100),
    ("gw-01.boiler", "rapid_rise"): ("minor", "new", -10),  # overdue
    ("gw-01.pump", "over_temperature"): ("major", "new", 50),
    ("gw-01.pump", "door_forced"): ("critical", "accepted", -5),  # overdue
    ("gw-01.pump", "rapid_rise"): ("major", "returned", 10),
    ("gw-02.boiler", "over_temperature"): ("major", "closed", None),
    ("gw-01.boiler", "door_held_open"): ("critical", "resolved", None),
}
URGENT = [  # overdue (critical, minor), then critical (+100 s, no deadline), then major (+10, +50)
    ("gw-01.pump", "door_forced"), ("gw-01.boiler", "rapid_rise"),
    ("gw-01.boiler", "over_temperature"), ("gw-01.boiler", "door_held_open"),
    ("gw-01.pump", "rapid_rise"), ("gw-01.pump", "over_temperature"),
]


def _keys(rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(row["point"], row["type"]) for row in rows]


async def test_urgency_order_filters_and_paging(
    start_server: Any, edge: EdgePublisher, db_url: str,
) -> None:
    app = await start_server(db_url=db_url)
    other = EdgePublisher(edge.port, "gw-02")
    try:
        for point, type_ in CASES:
            (other if point.startswith("gw-02") else edge).publish(
                (other if point.startswith("gw-02") else edge).incident(point, type=type_))
    finally:
        other.close()
    await async_wait_until(lambda: app.counters.get("incidents.opened") == len(CASES))
    now = utc_now()
    with app.factory.begin() as session:
        for (point, type_), (severity, state, due_s) in CASES.items():
            due = None if due_s is None else now + timedelta(seconds=due_s)
            values: dict[str, Any] = {"severity": severity, "state": state}
            if state in ("new", "returned"):
                values["accept_due_at"] = due
            elif state == "accepted":
                values |= {"resolve_due_at": due, "accepted_by": "worker-g01",
                           "accepted_at": now}
            elif state == "closed":
                values["closed_at"] = now
            session.execute(update(Incident).where(Incident.point_id == point,
                                                   Incident.type == type_).values(**values))
    assert app.http_url is not None
    async with httpx.AsyncClient(base_url=app.http_url, trust_env=False, timeout=30) as http:
        api = Api(http)

        async def listed(user: str = "control", **params: Any) -> list[tuple[str, str]]:
            return _keys(await api.json(user, "/api/v1/incidents", **params))

        assert await listed(order="urgency") == URGENT  # the closed one is out of the way
        assert await listed(order="urgency", limit=2, offset=2) == URGENT[2:4]
        assert await listed(order="urgency", offset=6) == []
        everything = await listed(order="urgency", open="false")
        assert everything[:6] == URGENT and everything[6:] == [("gw-02.boiler",
                                                                 "over_temperature")]
        assert await listed(order="urgency", overdue="true") == URGENT[:2]
        assert await listed(order="urgency", severity="critical") == [
            k for k in URGENT if CASES[k][0] == "critical"]
        assert await listed(order="urgency", state="returned") == [("gw-01.pump", "rapid_rise")]
        assert await listed(state="closed") == [("gw-02.boiler", "over_temperature")]
        assert await listed(order="urgency", type="rapid_rise") == [
            ("gw-01.boiler", "rapid_rise"), ("gw-01.pump", "rapid_rise")]
        # g01 and its micro-grid g01-a: the boiler lives in g01-a, the pump in g01.
        assert await listed(order="urgency", grid="g01-a") == [
            k for k in URGENT if k[0] == "gw-01.boiler"]
        later = (now + timedelta(hours=1)).isoformat()
        assert await listed(order="urgency", since=later) == []
        assert await listed(order="urgency", until=later) == URGENT
        # A worker sees their grids only; finished work there only when asked for.
        assert await listed("worker-g02", order="urgency") == []
        assert await listed("worker-g02", open="false") == [("gw-02.boiler", "over_temperature")]
        bad = await api.as_("control", "GET", "/api/v1/incidents", params={"order": "loudest"})
        assert bad.status_code == 422
