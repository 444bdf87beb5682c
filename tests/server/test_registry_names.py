"""The registry's names in the API views and the grid tree with its counts, on a running server
with the test community (湖西街道 → 莲园社区 → 第一网格 (1-3号楼), 第二网格)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import httpx
from api_client import Api
from server_helpers import EdgePublisher, async_wait_until
from sqlalchemy import event, update

from gridsense_protocol import GatewayState, Status, utc_now
from gridsense_server.app import ServerApp
from gridsense_server.db.models import Incident

BOILER = {"point_name": "1号楼锅炉房", "location": "1号楼 B1", "grid_name": "第一网格",
          "micro_grid_name": "1-3号楼", "community_name": "莲园社区", "street_name": "湖西街道"}
PUMP = {"point_name": "水泵房", "location": None, "grid_name": "第一网格",
        "micro_grid_name": None, "community_name": "莲园社区", "street_name": "湖西街道"}
UNKNOWN = dict.fromkeys(BOILER)


def _names(view: dict[str, Any]) -> dict[str, Any]:
    return {key: view[key] for key in BOILER}


@contextmanager
def _statements(app: ServerApp) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if re.search(r"\b(FROM|JOIN) (points|grids|communities|streets)\b", statement):
            seen.append(statement)

    event.listen(app.engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(app.engine, "before_cursor_execute", count)


def _tree_counts(node: dict[str, Any]) -> dict[str, tuple[int, int]]:
    result = {node["id"]: (node["open"], node["overdue"])}
    for child in node["children"]:
        result |= _tree_counts(child)
    return result


async def test_names_in_incident_and_gateway_views_and_the_grid_tree(
    start_server: Any, edge: EdgePublisher, db_url: str,
) -> None:
    app: ServerApp = await start_server(db_url=db_url)
    edge.publish(Status(gateway="gw-01", seq=edge.next_seq(), ts=utc_now(),
                        state=GatewayState.ONLINE))
    edge.publish(edge.incident("gw-01.boiler"))
    edge.publish(edge.incident("gw-01.pump", type="rapid_rise"))
    edge.publish(edge.incident("gw-01.attic"))  # a point the registry does not know
    other = EdgePublisher(edge.port, "gw-02")
    try:
        other.publish(other.incident("gw-02.boiler"))
    finally:
        other.close()
    await async_wait_until(lambda: app.counters.get("incidents.opened") == 4)
    with app.factory.begin() as session:  # the pump's accept deadline has passed
        session.execute(update(Incident).where(Incident.point_id == "gw-01.pump")
                        .values(accept_due_at=utc_now() - timedelta(seconds=1)))
    assert app.http_url is not None
    async with httpx.AsyncClient(base_url=app.http_url, trust_env=False, timeout=30) as http:
        api = Api(http)

        async def registry_reads(**params: str) -> tuple[int, list[dict[str, Any]]]:
            """The fewest registry reads seen in three requests: the server's background work
            (escalation looks grids up) shares the engine, a lookup per row would show in all."""
            fewest, body = 10**6, []
            for _ in range(3):
                with _statements(app) as seen:
                    body = await api.json("control", "/api/v1/incidents", **params)
                fewest = min(fewest, len(seen))
            return fewest, body

        every, listed = await registry_reads()
        one, [pump] = await registry_reads(type="rapid_rise")
        assert len(listed) == 4
        assert every == one == 1  # one query names four rows, as it names one
        by_point = {view["point"]: view for view in listed}
        assert _names(by_point["gw-01.boiler"]) == BOILER
        assert _names(pump) == PUMP
        assert _names(by_point["gw-01.attic"]) == UNKNOWN  # ids only
        assert by_point["gw-02.boiler"]["grid_name"] == "第二网格"

        boiler_id = by_point["gw-01.boiler"]["id"]
        detail = await api.json("worker-g01", f"/api/v1/incidents/{boiler_id}")
        assert _names(detail) == BOILER
        accepted = await api.act("worker-g01", boiler_id, "accept")
        assert _names(accepted.json()["incident"]) == BOILER

        [gateway] = await api.json("worker-g01", "/api/v1/gateways")
        assert gateway["id"] == "gw-01"
        assert [(p["id"], p["point_name"], p["micro_grid_name"]) for p in gateway["points"]] == [
            ("gw-01.boiler", "1号楼锅炉房", "1-3号楼"), ("gw-01.pump", "水泵房", None)]

        points = await api.json("worker-g02", "/api/v1/registry/points")
        assert [(p["id"], p["point_name"], p["grid_name"]) for p in points] == [
            ("gw-02.boiler", "2号楼锅炉房", "第二网格")]
        everywhere = await api.json("control", "/api/v1/registry/points")
        assert [p["id"] for p in everywhere] == ["gw-01.boiler", "gw-01.pump", "gw-02.boiler"]
        assert _names(everywhere[0]) == BOILER

        tree = await api.json("control", "/api/v1/registry/tree")
        [street] = tree["streets"]
        assert (street["name"], [c["name"] for c in street["children"]]) == ("湖西街道",
                                                                             ["莲园社区"])
        assert _tree_counts(street) == {
            "hx": (3, 1), "ly": (3, 1), "g01": (2, 1), "g01-a": (1, 0), "g02": (1, 0)}
        assert tree["unassigned"] == {"open": 1, "overdue": 0}

        scoped = await api.json("worker-g02", "/api/v1/registry/tree")
        assert _tree_counts(scoped["streets"][0]) == {"hx": (1, 0), "ly": (1, 0), "g02": (1, 0)}
        assert scoped["unassigned"] is None
        unauthenticated = await http.get("/api/v1/registry/tree")
        assert unauthenticated.status_code == 401
