"""The Grafana dashboards name only what the system really writes: a real server fed over real
MQTT writes to InfluxDB 1.x (or VictoriaMetrics), a real Prometheus (or VictoriaMetrics) scrapes
its /metrics, and every dashboard query is checked against them and run."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
import yaml
from dashboard_support import OVERDUE_AT_ONCE, drive_every_series
from metrics_support import names, scrape
from server_helpers import EdgePublisher, async_wait_until

from gridsense_devtools.dashboards import (
    DASHBOARDS,
    Query,
    dashboard_files,
    influx_names,
    metric_names,
    queries,
)
from gridsense_devtools.ports import free_port
from gridsense_devtools.scrapers import Prometheus, ScrapeTarget, VictoriaMetrics
from gridsense_devtools.services import InfluxDB
from gridsense_server.app import ServerApp

ServerFactory = Callable[..., Awaitable[ServerApp]]
TOKEN = "dashboards-test-metrics-token-0123"
EDGE_DASHBOARD = "gridsense-edge"  # checked against a real gateway in tests/edge
INFLUX_MEASUREMENTS = {"temperature", "detections", "access", "gateway_health"}


def _by_source(uid: str, *, edge: bool = False) -> list[Query]:
    """The queries on datasource ``uid`` (of the gateway dashboard only, or of the others)."""
    return [q for path in dashboard_files() for q in queries(path)
            if q.datasource == uid and (path.stem == EDGE_DASHBOARD) is edge]


def test_every_dashboard_is_provisioning_json_on_a_known_datasource() -> None:
    files = dashboard_files()
    provisioned = _provisioned_datasources()
    assert provisioned == {"gridsense-influxdb", "gridsense-prometheus",
                           "gridsense-victoriametrics"}
    assert {f.stem for f in files} == {"gridsense-system", "gridsense-timeseries-influxdb",
                                       "gridsense-timeseries-victoriametrics", EDGE_DASHBOARD}
    for path in files:
        found = list(queries(path))
        assert found, f"{path.name}: no query"
        for query in found:
            assert query.datasource in provisioned, query


def _provisioned_datasources() -> set[str]:
    """The datasource uids ops/grafana/provisioning gives Grafana."""
    path = DASHBOARDS.parent / "provisioning" / "datasources" / "gridsense.yaml"
    return {source["uid"] for source in yaml.safe_load(path.read_text())["datasources"]}


def _address(url: str | None) -> str:
    assert url is not None
    return url.removeprefix("http://")


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "metrics.token"
    path.write_text(TOKEN, encoding="utf-8")
    os.chmod(path, 0o600)
    return path


@pytest.fixture
def scrapers() -> Iterator[list[Prometheus | VictoriaMetrics]]:
    """Prometheus or VictoriaMetrics servers a test starts: stopped after the test's server."""
    started: list[Prometheus | VictoriaMetrics] = []
    yield started
    for server in started:
        server.stop()


async def test_influxdb_and_system_dashboards_against_influxdb_and_prometheus(
    scrapers: list[Prometheus | VictoriaMetrics], start_server: ServerFactory, edge: EdgePublisher,
    influx: tuple[InfluxDB, str], token_file: Path, tmp_path: Path,
) -> None:
    app = await start_server(http={"metrics_token_file": str(token_file)},
                             lifecycle=OVERDUE_AT_ONCE)
    # Prometheus scrapes the public port with the token, as a remote Prometheus would.
    scraper = Prometheus(tmp_path / "prometheus", free_port(),
                         targets=[ScrapeTarget(_address(app.http_url), token_file)])
    scrapers.append(scraper)
    scraper.start()
    drive_every_series(edge)
    server, database = influx

    def measurements() -> set[str]:
        rows = server.points("SHOW MEASUREMENTS", database)
        return {row["name"] for row in rows}

    await async_wait_until(lambda: measurements() >= INFLUX_MEASUREMENTS, 30,
                           "every measurement the dashboards chart")
    for query in _by_source("gridsense-influxdb"):
        if not query.text.startswith("SHOW"):
            measurement, aggregated, identifiers = influx_names(query.text)
            assert measurement in measurements(), query
            fields = {r["fieldKey"] for r in server.points(
                f'SHOW FIELD KEYS FROM "{measurement}"', database)}
            tags = {r["tagKey"] for r in server.points(
                f'SHOW TAG KEYS FROM "{measurement}"', database)}
            assert aggregated <= fields, (query, fields)
            assert identifiers <= fields | tags, (query, fields, tags)
        rows = server.points(query.runnable(), database)
        assert rows, f"{query.where}: no data from {query.runnable()!r}"

    system = _by_source("gridsense-prometheus")
    wanted = {name for query in system for name in metric_names(query.text)}

    async def every_metric_scraped() -> bool:
        return wanted <= names(await scrape(app.local_url))  # type: ignore[arg-type]

    await async_wait_until(every_metric_scraped, 30, "every metric of the system dashboard")
    assert len(wanted) >= 12
    await async_wait_until(
        lambda: all(scraper.series(name) for name in wanted), 60,
        "every metric of the system dashboard in Prometheus")
    for query in system:
        scraper.query(query.runnable())  # raises on a query Prometheus refuses


async def test_victoriametrics_dashboards_against_a_server_writing_to_victoriametrics(
    scrapers: list[Prometheus | VictoriaMetrics], start_server: ServerFactory, edge: EdgePublisher,
    tmp_path: Path,
) -> None:
    vm = VictoriaMetrics(tmp_path / "victoria", free_port())
    scrapers.append(vm)
    # The server writes its time series to VictoriaMetrics (InfluxDB line protocol on /write);
    # VictoriaMetrics scrapes the server's local-only port for the system dashboard.
    http_local = free_port()
    vm.targets = [ScrapeTarget(f"127.0.0.1:{http_local}")]
    vm.start()
    app = await start_server(influx_url=vm.url, database="gridsense", http_port=0,
                             local_port=http_local, lifecycle=OVERDUE_AT_ONCE)
    assert app.local_url == f"http://127.0.0.1:{http_local}"
    drive_every_series(edge)
    timeseries = _by_source("gridsense-victoriametrics")
    wanted = {name for query in timeseries for name in metric_names(query.text)}
    assert wanted == {"temperature_value", "access_count", "detections_value",
                      "gateway_health_cpu_percent", "gateway_health_memory_rss_bytes"}
    await async_wait_until(lambda: all(vm.series(name) for name in wanted), 60,
                           "every series of the time-series dashboard in VictoriaMetrics")
    for query in timeseries:
        if query.text.startswith("label_values("):
            metric, label = query.text.removeprefix("label_values(").rstrip(")").split(", ")
            assert vm.api(f"/api/v1/label/{label}/values", **{"match[]": metric}), query
            continue
        assert vm.query(query.runnable()), f"{query.where}: no data from {query.runnable()!r}"

    system = _by_source("gridsense-prometheus")
    wanted = {name for query in system for name in metric_names(query.text)}
    await async_wait_until(lambda: all(vm.series(name) for name in wanted), 60,
                           "every metric of the system dashboard in VictoriaMetrics")
    for query in system:
        vm.query(query.runnable())  # raises on a query VictoriaMetrics refuses
