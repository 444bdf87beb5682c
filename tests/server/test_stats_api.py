"""Statistics on a running server: incidents raised by a gateway at known device times, handled
through the API, counted per day, grid, person and point against the 5-min / 3-h targets."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from api_client import Api
from server_helpers import EdgePublisher, async_wait_until

from gridsense_protocol import utc_now
from gridsense_server.app import ServerApp


def _by(rows: list[dict[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    return {row[key]: row for row in rows}


async def test_statistics_per_day_grid_person_and_point_scoped_and_as_csv(
    start_server: Any, edge: EdgePublisher, db_url: str,
) -> None:
    app: ServerApp = await start_server(db_url=db_url)
    now = utc_now()
    opened = {  # (point, type) → how long before now the first event happened
        ("gw-01.boiler", "over_temperature"): timedelta(minutes=10),  # accepted late
        ("gw-01.pump", "rapid_rise"): timedelta(seconds=60),  # accepted and done in time
        ("gw-01.boiler", "door_forced"): timedelta(seconds=30),  # waiting, within target
        ("gw-02.boiler", "over_temperature"): timedelta(hours=4),  # never accepted: missed
    }
    other = EdgePublisher(edge.port, "gw-02")
    try:
        for (point, type_), ago in opened.items():
            gateway = other if point.startswith("gw-02") else edge
            gateway.publish(gateway.incident(point, type=type_, ts=now - ago))
    finally:
        other.close()
    await async_wait_until(lambda: app.counters.get("incidents.opened") == len(opened))
    assert app.http_url is not None
    async with httpx.AsyncClient(base_url=app.http_url, trust_env=False, timeout=30) as http:
        api = Api(http)
        listed = await api.json("control", "/api/v1/incidents")
        ids = {(i["point"], i["type"]): i["id"] for i in listed}
        # The worker accepts both; the control room resolves the pump's: each is credited
        # with the step they did.
        for key, resolver in ((("gw-01.boiler", "over_temperature"), "worker-g01"),
                              (("gw-01.pump", "rapid_rise"), "control")):
            for user, action in (("worker-g01", "accept"), (resolver, "resolve")):
                reply = await api.act(user, ids[key], action)
                assert reply.status_code == 200, reply.text

        body = await api.json("control", "/api/v1/stats")
        assert body["incidents"] == 4 and body["timezone"] == "Asia/Shanghai"
        assert body["targets"] == {"accept_s": 300, "complete_s": 10800}
        overall = body["overall"]
        assert (overall["opened"], overall["accepted"], overall["accepted_in_time"],
                overall["completed"], overall["completed_in_time"],
                overall["missed_target"], overall["missed_rate"]) == (4, 2, 1, 2, 2, 2, 0.5)

        zone = ZoneInfo("Asia/Shanghai")
        days: dict[tuple[str, str], int] = {}
        for (_, type_), ago in opened.items():
            day = (now - ago).astimezone(zone).date().isoformat()
            days[(day, type_)] = days.get((day, type_), 0) + 1
        assert {(r["day"], r["type"]): r["count"] for r in body["per_day"]} == days

        grids = _by(body["per_grid"], "grid")
        assert set(grids) == {"g01", "g01-a", "g02"}
        boiler = grids["g01-a"]
        assert boiler["grid_name"] == "1-3号楼"
        assert (boiler["opened"], boiler["accepted"], boiler["accepted_in_time"],
                boiler["missed_target"]) == (2, 1, 0, 1)
        assert 600 <= boiler["accept_mean_s"] < 900  # from the device time of the first event
        assert grids["g02"]["accepted"] == 0 and grids["g02"]["missed_rate"] == 1.0
        assert grids["g01"]["missed_target"] == 0 and grids["g01"]["completed_in_time"] == 1

        # Two acceptances (60 s and 600 s): the median is their mean, nine in ten met 600 s.
        assert overall["accept_median_s"] == overall["accept_mean_s"]
        assert 600 <= overall["accept_p90_s"] < 900
        assert overall["complete_median_s"] is not None

        people = _by(body["per_person"], "username")
        assert set(people) == {"worker-g01", "control"}
        worker = people["worker-g01"]
        assert (worker["name"], worker["handled"], worker["accepted"], worker["accepted_in_time"],
                worker["completed"], worker["missed_target"]) == ("张伟", 2, 2, 1, 1, 1)
        control = people["control"]
        assert (control["name"], control["handled"], control["accepted"], control["completed"],
                control["completed_in_time"], control["missed_target"]) == (
            "监控中心", 1, 0, 1, 1, 0)

        # Every day of the range (30 days by default) for the chart's axis, each with its
        # overdue rate.
        today = now.astimezone(zone).date().isoformat()
        assert body["days"][-1] == today and 30 <= len(body["days"]) <= 31
        totals = {row["day"]: row for row in body["per_day_totals"]}
        assert list(totals) == body["days"]
        assert sum(row["opened"] for row in totals.values()) == 4
        assert sum(row["missed_target"] for row in totals.values()) == 2
        quiet = totals[body["days"][0]]
        assert (quiet["opened"], quiet["missed_rate"]) == (0, None)
        busiest = body["busiest_points"]
        assert (busiest[0]["point"], busiest[0]["point_name"], busiest[0]["count"]) == (
            "gw-01.boiler", "1号楼锅炉房", 2)

        mine = await api.json("worker-g02", "/api/v1/stats")
        assert mine["incidents"] == 1 and [g["grid"] for g in mine["per_grid"]] == ["g02"]
        g01 = await api.json("control", "/api/v1/stats", grid="g01")
        assert g01["incidents"] == 3
        earlier = await api.json("control", "/api/v1/stats",
                                 until=(now - timedelta(hours=1)).isoformat())
        assert earlier["incidents"] == 1
        hot = await api.json("control", "/api/v1/stats", type="over_temperature")
        assert hot["incidents"] == 2 and {r["type"] for r in hot["per_day"]} == {
            "over_temperature"}
        two_days = await api.json("control", "/api/v1/stats",
                                  since="2026-03-01T00:00:00+08:00",
                                  until="2026-03-03T00:00:00+08:00")
        assert two_days["days"] == ["2026-03-01", "2026-03-02"]  # until is exclusive

        exported = await api.as_("control", "GET", "/api/v1/stats.csv",
                                 params={"table": "per_grid"})
        assert exported.headers["content-type"].startswith("text/csv")
        text = exported.content.decode("utf-8")
        assert text.startswith("\ufeff")
        rows = list(csv.DictReader(io.StringIO(text.removeprefix("\ufeff"))))
        assert {r["grid"]: r["grid_name"] for r in rows} == {
            "g01": "第一网格", "g01-a": "1-3号楼", "g02": "第二网格"}
        by_person = await api.as_("control", "GET", "/api/v1/stats.csv",
                                  params={"table": "per_person"})
        assert "张伟" in by_person.content.decode("utf-8")
        by_day = await api.as_("control", "GET", "/api/v1/stats.csv",
                               params={"table": "per_day_totals"})
        header = by_day.content.decode("utf-8").removeprefix("\ufeff").splitlines()[0]
        assert header == "day,opened,missed_target,missed_rate"

        too_long = await api.as_("control", "GET", "/api/v1/stats", params={
            "since": (now - timedelta(days=401)).isoformat()})
        assert too_long.status_code == 422 and "400" in too_long.json()["detail"]
        bad_table = await api.as_("control", "GET", "/api/v1/stats.csv",
                                  params={"table": "secrets"})
        assert bad_table.status_code == 422
        assert (await http.get("/api/v1/stats")).status_code == 401
