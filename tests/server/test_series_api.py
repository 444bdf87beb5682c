"""The chart API on a running server: readings sent as a gateway sends them, stored by the real
InfluxDB writer, read back downsampled through GET /api/v1/points/{id}/series."""

from __future__ import annotations

import statistics
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from api_client import Api
from server_helpers import EdgePublisher, async_wait_until

from gridsense_devtools.services import InfluxDB
from gridsense_server.app import ServerApp
from gridsense_server.timeseries.reader import MAX_BUCKETS, NICE_STEPS_S, choose_step

HOUR = 3600


def _hour_ago() -> datetime:
    """The start of an hour in the recent past: buckets of every nice step align with it."""
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    return now - timedelta(hours=3)


def _value(i: int) -> float:
    return 20.0 + (i * 7 % 60) / 4  # varies inside every bucket, so mean, min and max differ


class Charts(Api):
    async def get(self, user: str, point: str, **params: Any) -> httpx.Response:
        return await self.as_(user, "GET", f"/api/v1/points/{point}/series", params=params)


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _expected(t0: datetime, step: int) -> list[tuple[datetime, float, float, float, int]]:
    rows = []
    for first in range(0, HOUR, step):
        values = [_value(i) for i in range(first, first + step)]
        rows.append((t0 + timedelta(seconds=first), statistics.fmean(values), min(values),
                     max(values), len(values)))
    return rows


def _actual(body: dict[str, Any]) -> list[tuple[datetime, float, float, float, int]]:
    return [(datetime.fromisoformat(p["t"]), p["mean"], p["min"], p["max"], p["count"])
            for p in body["points"]]


def _same(actual: list[tuple], expected: list[tuple]) -> bool:
    return len(actual) == len(expected) and all(
        a[0] == e[0] and a[4] == e[4] and all(abs(x - y) < 1e-9 for x, y in zip(a[1:4], e[1:4],
                                                                                strict=True))
        for a, e in zip(actual, expected, strict=True))


def test_the_step_keeps_every_range_within_the_limit() -> None:
    t0 = datetime(2024, 5, 1, tzinfo=UTC)
    for span_s in (1, 59, 999, 1000, 1001, 3600, 86400, 7 * 86400, 400 * 86400):
        step = choose_step(t0, t0 + timedelta(seconds=span_s))
        assert step in NICE_STEPS_S
        assert span_s / step <= MAX_BUCKETS, (span_s, step)
        smaller = [s for s in NICE_STEPS_S if s < step]
        assert not smaller or span_s / smaller[-1] > MAX_BUCKETS  # the finest that fits
    assert choose_step(t0, t0 + timedelta(hours=1), 600) == 600  # coarser request kept
    assert choose_step(t0, t0 + timedelta(hours=1), 1) == 5  # finer request coarsened


async def test_series_downsampled_from_real_readings_and_scoped_by_grid(
    running_server: ServerApp, edge: EdgePublisher, influx: tuple[InfluxDB, str],
) -> None:
    t0 = _hour_ago()
    for half in (0, HOUR // 2):
        edge.publish(edge.telemetry([
            ("gw-01.boiler", "temperature", _value(i), t0 + timedelta(seconds=i))
            for i in range(half, half + HOUR // 2)]))
    edge.publish(edge.telemetry([("gw-01.boiler", "humidity", 55.0, t0)]))
    assert running_server.http_url is not None
    async with httpx.AsyncClient(base_url=running_server.http_url, trust_env=False,
                                 timeout=30) as http:
        charts = Charts(http)
        window = {"from": _iso(t0), "to": _iso(t0 + timedelta(hours=1))}

        async def stored() -> int:
            reply = await charts.get("control", "gw-01.boiler", step=3600, **window)
            return sum(p["count"] for p in reply.json()["points"])

        await async_wait_until(lambda: running_server.counters.get("influx.written_lines")
                               >= HOUR + 1, 30, "readings written to InfluxDB")
        assert await stored() == HOUR

        auto = await charts.get("worker-g01", "gw-01.boiler", **window)
        assert auto.status_code == 200, auto.text
        body = auto.json()
        assert (body["field"], body["step_s"], body["limit"]) == ("temperature", 5, MAX_BUCKETS)
        assert _same(_actual(body), _expected(t0, 5))  # 720 buckets of 5 readings

        coarse = (await charts.get("control", "gw-01.boiler", step=600, **window)).json()
        assert _same(_actual(coarse), _expected(t0, 600))
        fine = (await charts.get("control", "gw-01.boiler", step=1, **window)).json()
        assert fine["step_s"] == 5 and len(fine["points"]) == HOUR // 5

        humidity = (await charts.get("control", "gw-01.boiler", field="humidity",
                                     **window)).json()
        assert [(p["mean"], p["count"]) for p in humidity["points"]] == [(55.0, 1)]
        empty = (await charts.get("control", "gw-01.pump", **window)).json()
        assert empty["points"] == []

        # Another grid's point and a point that does not exist look the same.
        hidden = await charts.get("worker-g02", "gw-01.boiler", **window)
        missing = await charts.get("worker-g02", "gw-99.nothing", **window)
        assert hidden.status_code == missing.status_code == 404
        assert "no such point" in hidden.json()["detail"]
        assert (await charts.get("worker-g02", "gw-02.boiler", **window)).status_code == 200

        too_long = await charts.get("control", "gw-01.boiler", **{
            "from": _iso(t0 - timedelta(days=401)), "to": _iso(t0)})
        assert too_long.status_code == 422 and "400" in too_long.json()["detail"]
        backwards = await charts.get("control", "gw-01.boiler",
                                     **{"from": window["to"], "to": window["from"]})
        assert backwards.status_code == 422 and "before" in backwards.json()["detail"]
        naive = await charts.get("control", "gw-01.boiler", **{"from": "2024-05-01T08:00:00"})
        assert naive.status_code == 422 and "time zone" in naive.json()["detail"]
        injected = await charts.get("control", "gw-01.boiler", field='temperature" ; DROP')
        assert injected.status_code == 422
        default = (await charts.get("control", "gw-01.boiler")).json()
        start, end = (datetime.fromisoformat(default[k]) for k in ("start", "end"))
        assert end - start == timedelta(hours=24)

        server, _ = influx
        server.stop()
        try:
            down = await charts.get("control", "gw-01.boiler", **window)
            assert down.status_code == 503 and "unavailable" in down.json()["detail"]
        finally:
            server.start()
        assert running_server.counters.get("api.series_unavailable") == 1
