"""In-process, through a real broker: replays never open or page twice, late incidents go to
control only, every message is acknowledged once, and the checker finds gaps."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from server_helpers import EdgePublisher, async_wait_until

from gridsense_devtools.server_process import run_check
from gridsense_devtools.services import InfluxDB
from gridsense_protocol import (
    CommandResult,
    GatewayState,
    Reading,
    Status,
    Telemetry,
    new_event_id,
    utc_now,
)
from gridsense_server.app import ServerApp
from gridsense_server.registry.viewers import Viewer

T0 = datetime(2024, 5, 1, 8, 0, 0, tzinfo=UTC)
WORKER = Viewer("worker-g01", "worker", frozenset({"g01", "g01-a"}))
CONTROL = Viewer("control", "control", None)


def reading(point: str, ts: datetime, value: float = 21.0) -> Reading:
    return Reading(point=point, metric="temperature", value=value, unit="°C", ts=ts)


async def test_a_replayed_incident_neither_opens_nor_pages_again(
    running_server: ServerApp, edge: EdgePublisher
) -> None:
    app = running_server
    worker = app.hub.subscribe(WORKER)
    first = edge.publish(edge.incident("gw-01.boiler", ts=utc_now()))
    opened = await asyncio.wait_for(worker.next(), 30)
    assert opened["event"] == "opened" and opened["incident"]["backfilled"] is False
    # The edge replays it (same event id and seq), as after a lost PUBACK.
    edge.publish(first)
    await async_wait_until(lambda: app.counters.get("ingest.redelivered") == 1, 30,
                           "the replay recorded as a redelivery")
    assert app.counters.get("incidents.duplicate_events") == 1
    second = edge.publish(edge.incident("gw-01.pump", ts=utc_now()))
    following = await asyncio.wait_for(worker.next(), 30)
    assert following["incident"]["point"] == "gw-01.pump"  # nothing was pushed in between
    assert app.counters.get("incidents.opened") == 2
    await async_wait_until(lambda: app.counters.get("mqtt.acks") == 3, 30, "three acks")
    assert second.seq == 2


async def test_a_late_incident_is_backfilled_for_control_and_pages_no_worker(
    start_server, edge: EdgePublisher
) -> None:
    app = await start_server(late_after_s=300)
    worker = app.hub.subscribe(WORKER)
    control = app.hub.subscribe(CONTROL)
    edge.publish(edge.incident("gw-01.boiler", ts=utc_now() - timedelta(minutes=20)))
    backfilled = await asyncio.wait_for(control.next(), 30)
    assert backfilled["event"] == "backfilled"
    assert backfilled["incident"]["backfilled"] is True
    assert backfilled["incident"]["state"] == "new"  # recorded as a work order all the same

    edge.publish(edge.incident("gw-01.pump", ts=utc_now()))
    live = await asyncio.wait_for(worker.next(), 30)
    # The worker's first push is the live incident: the late one never reached them.
    assert live["event"] == "opened" and live["incident"]["point"] == "gw-01.pump"
    assert (await asyncio.wait_for(control.next(), 30))["event"] == "opened"
    assert app.counters.get("incidents.backfilled") == 1

    async with httpx.AsyncClient(base_url=app.http_url, trust_env=False, timeout=30) as http:
        token = (await http.post("/api/v1/auth/token",
                                 json={"username": "control", "password": "ctl"})).json()
        rows = (await http.get("/api/v1/incidents", headers={
            "Authorization": f"Bearer {token['access_token']}"})).json()
    assert {r["point"]: r["backfilled"] for r in rows} == {"gw-01.boiler": True,
                                                           "gw-01.pump": False}


async def test_the_checker_reports_a_sequence_gap_and_a_gap_in_a_series(
    start_server, edge: EdgePublisher, influx: tuple[InfluxDB, str], tmp_path: Path
) -> None:
    app = await start_server()
    # Seq 1..5 and 9..10 (6..8 never arrive); readings every second but for a minute's hole.
    times = [T0 + timedelta(seconds=s) for s in (*range(10), *range(70, 80))]
    for seq, chunk in zip((1, 2, 3, 4, 5, 9, 10), (times[:4], times[4:8], times[8:10],
                                                   times[10:12], times[12:14], times[14:17],
                                                   times[17:]), strict=True):
        edge.publish(Telemetry(gateway="gw-01", seq=seq, ts=utc_now(),
                               readings=[reading("gw-01.boiler", ts) for ts in chunk]))
    # Status reuses the latest seq: neither a redelivery nor a gap.
    edge.publish(Status(gateway="gw-01", seq=10, ts=utc_now(), state=GatewayState.ONLINE),
                 retain=True)
    # A command result consumes a seq like any other message, and is stored.
    edge.publish(CommandResult(gateway="gw-01", seq=11, ts=utc_now(), command_id=new_event_id(),
                               ok=True, result={"done": 1}))
    await async_wait_until(lambda: app.counters.get("command_results.stored") == 1, 30)
    await async_wait_until(lambda: app.counters.get("influx.written_lines") == 20, 30)
    await async_wait_until(lambda: app.counters.get("mqtt.acks") == 9, 30)  # acked: seqs recorded
    assert app.counters.get("ingest.redelivered") == 0

    config = tmp_path / "server.yaml"
    window = ["--since", T0.isoformat(), "--until", (T0 + timedelta(seconds=79)).isoformat(),
              "--max-gap", "5"]
    code, report, stderr = run_check(config, "--gateway", "gw-01", *window)
    assert code == 3, (report, stderr)
    [gateway] = report["gateways"]
    assert (gateway["seq_first"], gateway["seq_last"]) == (1, 11)
    assert gateway["missing_ranges"] == [[6, 8]] and gateway["seq_missing"] == 3
    [point] = report["points"]
    assert point["readings"] == 20
    assert [g["seconds"] for g in point["gaps"]] == [61.0]
    assert point["gaps"][0]["from"] == "2024-05-01T08:00:09Z"
    assert not report["ok"] and len(report["problems"]) == 2

    # The API shows the same gap per gateway.
    async with httpx.AsyncClient(base_url=app.http_url, trust_env=False, timeout=30) as http:
        token = (await http.post("/api/v1/auth/token",
                                 json={"username": "control", "password": "ctl"})).json()
        [row] = (await http.get("/api/v1/gateways", headers={
            "Authorization": f"Bearer {token['access_token']}"})).json()
    assert (row["seq_last"], row["seq_gaps"], row["seq_missing"]) == (11, 1, 3)

    # The missing messages turn up late (an edge replay): the checker is satisfied.
    for seq, first in ((6, 10), (7, 30), (8, 50)):
        edge.publish(Telemetry(gateway="gw-01", seq=seq, ts=utc_now(), readings=[
            reading("gw-01.boiler", T0 + timedelta(seconds=s)) for s in range(first, first + 20)
        ]))
    await async_wait_until(lambda: app.counters.get("influx.written_lines") == 80, 30)
    await async_wait_until(lambda: app.counters.get("mqtt.acks") == 12, 30)
    code, report, stderr = run_check(config, *window)
    assert code == 0, (report, stderr)


async def test_a_config_error_and_an_unreachable_influx_have_their_exit_codes(
    tmp_path: Path,
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("influxdb:\n  spool_max_mb: -1\n")
    code, _, stderr = run_check(bad)
    assert code == 2 and "influxdb.spool_max_mb" in stderr
    from server_helpers import write_server_config

    from gridsense_devtools.ports import free_port

    config = write_server_config(tmp_path, mqtt_port=1, database="x", registry=None,
                                 influx_url=f"http://127.0.0.1:{free_port()}",
                                 db_url=f"sqlite:///{tmp_path / 'server.db'}")
    from gridsense_server.db import make_engine, upgrade

    engine = make_engine(f"sqlite:///{tmp_path / 'server.db'}")
    upgrade(engine)
    engine.dispose()
    code, _, stderr = run_check(config)
    assert code == 1 and "unreachable" in stderr
