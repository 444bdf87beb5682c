"""/metrics of a real server fed over real MQTT: the counters move with the traffic, the
database-derived gauges follow the incidents, and the public port refuses without the token."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import httpx
from metrics_support import scrape, value
from server_helpers import EdgePublisher, async_wait_until

from gridsense_protocol import Health, utc_now
from gridsense_server.app import ServerApp
from gridsense_server.secure_files import FileProblem

ServerFactory = Callable[..., Awaitable[ServerApp]]

TOKEN = "0123456789abcdef-metrics-token"


def _token_file(tmp_path: Path, text: str = TOKEN, mode: int = 0o600) -> Path:
    path = tmp_path / "metrics.token"
    path.write_text(text + "\n", encoding="utf-8")
    os.chmod(path, mode)
    return path


async def test_counters_move_with_mqtt_traffic_and_public_port_needs_the_token(
    start_server: ServerFactory, edge: EdgePublisher, tmp_path: Path,
) -> None:
    app: ServerApp = await start_server(http={"metrics_token_file": str(_token_file(tmp_path))})
    assert app.local_url is not None and app.http_url is not None
    before = await scrape(app.local_url)
    assert value(before, "gridsense_ingest_messages_total", kind="telemetry") == 0
    assert value(before, "gridsense_mqtt_connected") == 1

    now = utc_now()
    edge.publish(edge.telemetry([("gw-01.boiler", "temperature", 22.5, now),
                                 ("gw-01.boiler", "temperature", 23.0, now + timedelta(seconds=1)),
                                 ("gw-01.pump", "temperature", 30.0, now)]))
    edge.publish(edge.incident("gw-01.boiler", ts=now))
    edge.publish(Health(gateway="gw-01", seq=edge.next_seq(), ts=now, uptime_s=5.0,
                        cpu_percent=1.5, memory_rss_bytes=30_000_000, disk_free_bytes=10**9))
    edge.publish_raw("gridsense/v1/gw-01/telemetry", b"not json")

    async def moved() -> bool:
        after = await scrape(app.local_url)  # type: ignore[arg-type]
        return (value(after, "gridsense_influx_written_lines_total") >= 4
                and value(after, "gridsense_incidents_open", state="new", severity="major") == 1
                and value(after, "gridsense_ingest_outcomes_total", outcome="applied") >= 3)

    await async_wait_until(moved, 30, "metrics moved by the traffic")
    after = await scrape(app.local_url)
    assert value(after, "gridsense_ingest_messages_total", kind="telemetry") == 1
    assert value(after, "gridsense_ingest_messages_total", kind="incident") == 1
    assert value(after, "gridsense_ingest_messages_total", kind="health") == 1
    assert value(after, "gridsense_ingest_readings_total") == 3
    assert value(after, "gridsense_ingest_invalid_total", reason="malformed_json") == 1
    assert value(after, "gridsense_dead_letters_received_total") == 1
    assert value(after, "gridsense_counter_total", name="ingest.invalid.malformed_json") == 1
    assert value(after, "gridsense_influx_write_duration_seconds_count") >= 1
    assert value(after, "gridsense_influx_write_duration_seconds_sum") > 0
    assert value(after, "gridsense_influx_write_duration_seconds_bucket", le="+Inf") == value(
        after, "gridsense_influx_write_duration_seconds_count")
    assert value(after, "gridsense_health_status", status="degraded") == 1  # the dead letter
    assert value(after, "gridsense_metrics_database_up") == 1
    assert value(after, "gridsense_registry_points") >= 2
    assert value(after, "gridsense_influx_spool_lines") == 0

    async with httpx.AsyncClient(base_url=app.http_url, trust_env=False, timeout=30) as http:
        refused = await http.get("/metrics")
        assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
        assert "gridsense_" not in refused.text
        wrong = await http.get("/metrics", headers={"Authorization": "Bearer not-the-token"})
        assert wrong.status_code == 401
    public = await scrape(app.http_url, TOKEN)
    assert value(public, "gridsense_ingest_messages_total", kind="telemetry") == 1


async def test_overdue_lag_and_pages_by_channel_follow_the_database(
    start_server: ServerFactory, edge: EdgePublisher, db_url: str,
) -> None:
    # An accept deadline already passed the moment the incident opens: overdue at once; the
    # first page step is due at once, so the scheduler sends app pages. On SQLite and
    # PostgreSQL: the gauges are grouped reads of the database.
    app = await start_server(db_url=db_url, lifecycle={"sla": {"accept_s": 0.001}})
    assert app.local_url is not None
    edge.publish(edge.incident("gw-01.boiler", ts=utc_now()))

    async def paged() -> bool:
        samples = await scrape(app.local_url)  # type: ignore[arg-type]
        return (value(samples, "gridsense_incidents_overdue", severity="major") == 1
                and any(name == "gridsense_pages_total" and value_ > 0
                        for (name, _), value_ in samples.items()))

    await async_wait_until(paged, 30, "overdue incident paged")
    samples = await scrape(app.local_url)
    pages = {labels: v for (name, labels), v in samples.items() if name == "gridsense_pages_total"}
    assert all(dict(labels).keys() == {"channel", "status"} for labels in pages)
    assert value(samples, "gridsense_escalation_pass_duration_seconds_count") >= 1


async def test_scheduler_lag_shows_a_step_due_and_not_yet_run(
    start_server: ServerFactory, edge: EdgePublisher,
) -> None:
    # Passes a minute apart: once the first pass is over, the incident's first page step (due
    # at once) waits for the next one, and the lag gauge says how long it has waited.
    app = await start_server(lifecycle={"tick_s": 60})
    assert app.local_url is not None

    async def first_pass_done() -> bool:
        samples = await scrape(app.local_url)  # type: ignore[arg-type]
        return value(samples, "gridsense_escalation_pass_duration_seconds_count") >= 1

    await async_wait_until(first_pass_done, 30, "the scheduler's first pass")
    assert value(await scrape(app.local_url), "gridsense_escalation_lag_seconds") == 0
    edge.publish(edge.incident("gw-01.boiler", ts=utc_now()))

    async def lagging() -> bool:
        samples = await scrape(app.local_url)  # type: ignore[arg-type]
        return value(samples, "gridsense_escalation_lag_seconds") > 0

    await async_wait_until(lagging, 30, "a step due and waiting")
    samples = await scrape(app.local_url)
    assert value(samples, "gridsense_incidents_open", state="new", severity="major") == 1
    assert not any(name == "gridsense_pages_total" for name, _ in samples)


def test_a_metrics_token_others_can_read_is_refused(tmp_path: Path) -> None:
    from gridsense_server.metrics import load_metrics_token

    assert load_metrics_token(_token_file(tmp_path)) == TOKEN
    for text, mode in ((TOKEN, 0o644), ("short", 0o600), ("two words here-and-more", 0o600)):
        path = _token_file(tmp_path, text, mode)
        try:
            load_metrics_token(path)
        except FileProblem as exc:
            assert str(path) in str(exc)
        else:
            raise AssertionError(f"{text!r} mode {mode:o} accepted")
