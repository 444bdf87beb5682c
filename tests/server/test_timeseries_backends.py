"""The time-series stores behind the writer and the charts: InfluxDB 1.x and VictoriaMetrics
(Debian's package), and the v2 write path through influxdb-client (against VictoriaMetrics, which
takes v2 writes). Readings land with their tags and device times, an outage spools and replays,
the checker reads both, and the chart buckets are the same from both stores."""

from __future__ import annotations

import json
import shutil
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_client import Api
from server_helpers import EdgePublisher, async_wait_until

from gridsense_devtools.files import write_secret
from gridsense_devtools.ports import free_port
from gridsense_devtools.scrapers import VictoriaMetrics
from gridsense_devtools.services import InfluxDB
from gridsense_protocol import Reading, Telemetry, utc_now
from gridsense_server.app import ServerApp
from gridsense_server.config import InfluxConfig
from gridsense_server.counters import Counters
from gridsense_server.db import make_engine
from gridsense_server.timeseries.checker import CheckOptions, run_check
from gridsense_server.timeseries.influx_http import InfluxHttp
from gridsense_server.timeseries.reader import Bucket, InfluxQLReader
from gridsense_server.timeseries.victoria_reader import VictoriaReader

pytestmark = pytest.mark.skipif(shutil.which("victoria-metrics") is None,
                                reason="Debian's victoria-metrics is not installed "
                                       "(scripts/test installs it)")

POINT = "gw-01.boiler"


@pytest.fixture
def victoria(tmp_path: Path) -> Iterator[VictoriaMetrics]:
    store = VictoriaMetrics(tmp_path / "victoria", free_port()).start()
    yield store
    store.stop()


def flushed(store: VictoriaMetrics) -> None:
    """What was written becomes searchable now, not at the next in-memory flush."""
    with urllib.request.urlopen(f"{store.url}/internal/force_flush", timeout=10) as resp:
        resp.read()


def exported(store: VictoriaMetrics, selector: str) -> list[dict[str, Any]]:
    """Every raw sample of the matching series: one JSON object a series."""
    query = urllib.parse.urlencode({"match[]": selector})
    with urllib.request.urlopen(f"{store.url}/api/v1/export?{query}", timeout=10) as resp:
        return [json.loads(line) for line in resp.read().decode().splitlines() if line]


def _telemetry(edge: EdgePublisher, t0: datetime, seconds: range) -> Telemetry:
    readings = [Reading(point=POINT, metric="temperature", value=20.0 + (i * 7 % 60) / 4,
                        unit="°C", ts=t0 + timedelta(seconds=i)) for i in seconds]
    return Telemetry(gateway=edge.gateway, seq=edge.next_seq(), ts=utc_now(), readings=readings)


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


async def _stored_once_back(app: ServerApp, victoria: VictoriaMetrics, total: int) -> list[int]:
    """Start the stopped store again; once the server wrote ``total`` lines, the times stored."""
    victoria.start()
    await async_wait_until(lambda: app.counters.get("influx.written_lines") >= total, 60,
                           "the readings written once the store is back")
    flushed(victoria)
    [series] = exported(victoria, '{__name__="temperature_value"}')
    return list(series["timestamps"])


async def test_readings_land_with_tags_and_device_times_and_charts_read_them(
    start_server: Any, edge: EdgePublisher, victoria: VictoriaMetrics,
) -> None:
    app: ServerApp = await start_server(influx_url=victoria.url, database="gridsense",
                                        timeseries={"kind": "victoriametrics"})
    t0 = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=30)
    edge.publish(_telemetry(edge, t0, range(600)))
    edge.publish(Telemetry(gateway=edge.gateway, seq=edge.next_seq(), ts=utc_now(), readings=[
        Reading(point=POINT, metric="detections", value=2, unit="objects", ts=t0,
                tags={"class": "person"})]))
    await async_wait_until(lambda: app.counters.get("influx.written_lines") >= 601, 30,
                           "readings written to VictoriaMetrics")
    flushed(victoria)

    [series] = exported(victoria, '{__name__="temperature_value"}')
    assert series["metric"] == {"__name__": "temperature_value", "db": "gridsense",
                                "gateway": "gw-01", "grid": "g01-a", "point": POINT}
    assert series["timestamps"] == [_ms(t0) + 1000 * i for i in range(600)]  # device times
    [person] = exported(victoria, '{__name__="detections_value"}')
    assert person["metric"]["class"] == "person" and person["values"] == [2]

    assert app.http_url is not None
    async with httpx.AsyncClient(base_url=app.http_url, trust_env=False, timeout=30) as http:
        reply = await Api(http).as_("worker-g01", "GET", f"/api/v1/points/{POINT}/series",
                                    params={"from": t0.isoformat(), "step": 60,
                                            "to": (t0 + timedelta(minutes=10)).isoformat()})
    assert reply.status_code == 200, reply.text
    points = reply.json()["points"]
    assert [p["count"] for p in points] == [60] * 10
    assert datetime.fromisoformat(points[0]["t"]) == t0.replace(second=0)


async def test_an_outage_of_victoriametrics_spools_and_replays_every_reading(
    start_server: Any, edge: EdgePublisher, victoria: VictoriaMetrics, tmp_path: Path,
) -> None:
    app: ServerApp = await start_server(influx_url=victoria.url, database="gridsense",
                                        timeseries={"kind": "victoriametrics"},
                                        spool_after_s=0.5)
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=20)
    edge.publish(_telemetry(edge, t0, range(100)))
    await async_wait_until(lambda: app.counters.get("influx.written_lines") >= 100, 30,
                           "the first readings written")
    # Stopped, not killed: VictoriaMetrics answers a write before it is on disk (it persists
    # every few seconds), so kill -9 loses what it took last; docs/operations.md tells.
    victoria.stop()
    for start in range(100, 1000, 300):
        edge.publish(_telemetry(edge, t0, range(start, start + 300)))
    await async_wait_until(lambda: app.counters.get("influx.spooled_lines") >= 900, 30,
                           "readings spooled while VictoriaMetrics is down")
    stamps = await _stored_once_back(app, victoria, 1000)
    assert stamps == [_ms(t0) + 1000 * i for i in range(1000)]  # once each

    report = run_check(app.config, make_engine(app.config.database.url), CheckOptions(
        since=t0 - timedelta(seconds=1), until=t0 + timedelta(seconds=1200), max_gap_s=5))
    [point] = report.points
    assert (point["point"], point["readings"], point["gap_count"]) == (POINT, 1000, 0)
    victoria.kill()  # a silent store: the checker says so, naming it
    with pytest.raises(Exception, match="VictoriaMetrics"):
        run_check(app.config, make_engine(app.config.database.url),
                  CheckOptions(since=t0, until=t0 + timedelta(seconds=60)))


async def test_the_v2_write_path_through_influxdb_client(
    start_server: Any, edge: EdgePublisher, victoria: VictoriaMetrics, tmp_path: Path,
) -> None:
    token = write_secret(tmp_path / "influx-token", "a-v2-api-token\n")
    app: ServerApp = await start_server(influx_url=victoria.url, database="gridsense",
                                        timeseries={"kind": "influxdb-v2", "org": "estate",
                                                    "bucket": "readings",
                                                    "token_file": str(token)})
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    edge.publish(_telemetry(edge, t0, range(200)))
    await async_wait_until(lambda: app.counters.get("influx.written_lines") >= 200, 30,
                           "readings written through influxdb-client")
    flushed(victoria)
    [series] = exported(victoria, '{__name__="temperature_value"}')
    assert series["metric"]["point"] == POINT and series["metric"]["grid"] == "g01-a"
    assert series["timestamps"] == [_ms(t0) + 1000 * i for i in range(200)]

    victoria.stop()  # unreachable through the client: retried, then spooled, nothing lost
    edge.publish(_telemetry(edge, t0, range(200, 300)))
    await async_wait_until(lambda: app.counters.get("influx.connect_errors") >= 1, 30,
                           "the v2 writer saw the store down")
    assert len(await _stored_once_back(app, victoria, 300)) == 300


def test_a_v2_store_needs_its_org_and_token() -> None:
    with pytest.raises(ValueError, match="org and token_file"):
        InfluxConfig(kind="influxdb-v2", org="estate")


async def test_both_stores_give_the_same_chart_buckets(
    influx: tuple[InfluxDB, str], victoria: VictoriaMetrics,
) -> None:
    server, database = influx
    t0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
    ns0 = _ms(t0) * 1_000_000
    lines = [f"temperature,gateway=gw-01,grid=g01-a,point={POINT} value={20 + (i * 7 % 60) / 4} "
             f"{ns0 + i * 1_000_000_000}" for i in range(0, 3600, 3)]
    # The point moved grid half-way (two series), and a breakdown the chart must not count.
    lines += [f"temperature,gateway=gw-01,grid=g02-a,point={POINT} value={30 + i % 5} "
              f"{ns0 + i * 1_000_000_000}" for i in range(3600, 5400, 7)]
    lines += [f"temperature,class=person,gateway=gw-01,grid=g01-a,point={POINT} value=99 "
              f"{ns0 + i * 1_000_000_000}" for i in range(0, 5400, 60)]
    body = "\n".join(lines).encode()
    counters = Counters()
    stores = {}
    for kind, url, name in (("influxdb-v1", server.url, database),
                            ("victoriametrics", victoria.url, "gridsense")):
        http = InfluxHttp(InfluxConfig(kind=kind, url=url, database=name), counters, 30)
        await http.open()
        assert await http.ensure_database()
        assert (await http.write(body, len(lines))).done
        stores[kind] = http
    flushed(victoria)
    influxql, metricsql = InfluxQLReader(stores["influxdb-v1"]), VictoriaReader(
        stores["victoriametrics"])
    try:
        windows = [(t0, t0 + timedelta(hours=2), 60), (t0, t0 + timedelta(hours=2), 600),
                   # not aligned to the step: a clipped first and last bucket
                   (t0 + timedelta(seconds=17), t0 + timedelta(minutes=97, seconds=3), 300),
                   (t0 + timedelta(minutes=3), t0 + timedelta(minutes=4), 600),  # inside one
                   (t0 - timedelta(hours=1), t0 + timedelta(hours=3), 3600)]
        for start, end, step in windows:
            a = await influxql.buckets("temperature", POINT, start, end, step)
            b = await metricsql.buckets("temperature", POINT, start, end, step)
            assert a and _same(a, b), (start, end, step, a[:3], b[:3])
        # Sparklines of many points at once (every metric of theirs), aligned to the step.
        lines = [await reader.sparklines([POINT, "gw-01.nothing"], None, t0,
                                         t0 + timedelta(hours=2), 900, t0 - timedelta(days=1))
                 for reader in (influxql, metricsql)]
        assert set(lines[0]) == set(lines[1]) == {(POINT, "temperature")}
        a, b = lines[0][(POINT, "temperature")], lines[1][(POINT, "temperature")]
        assert a.latest == b.latest and a.latest is not None
        firsts = [sorted(await reader.first_readings("gw-01", t0 - timedelta(hours=1)),
                         key=lambda first: (first.point, first.metric))
                  for reader in (influxql, metricsql)]
        assert firsts[0] == firsts[1] and [f.t for f in firsts[0]] == [t0]
        assert len(a.means) == len(b.means) == 6 and all(  # the readings span 90 minutes
            x[0] == y[0] and abs(x[1] - y[1]) < 1e-9 for x, y in zip(a.means, b.means,
                                                                    strict=True))
    finally:
        for http in stores.values():
            await http.close()


def _same(a: list[Bucket], b: list[Bucket]) -> bool:
    return len(a) == len(b) and all(
        x.t == y.t and x.count == y.count and abs(x.mean - y.mean) < 1e-9
        and x.min == y.min and x.max == y.max for x, y in zip(a, b, strict=True))
