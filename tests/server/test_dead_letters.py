"""Dead letters against the real broker, database and InfluxDB: a message no store can take,
or dated out of bounds, is set aside with its reason, acknowledged, and ingest goes on."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from server_helpers import EdgePublisher, async_wait_until

from gridsense_devtools.processes import env_without_proxies
from gridsense_devtools.server_config import write_server_config
from gridsense_devtools.services import InfluxDB
from gridsense_protocol import Kind, Reading, Telemetry, encode, topic_for, utc_now
from gridsense_server.acks import NO_EFFECTS
from gridsense_server.app import ServerApp
from gridsense_server.db import make_engine, make_session_factory, upgrade
from gridsense_server.db.dead_letters import DeadLetterStore, new_dead_letter

ServerFactory = Callable[..., Awaitable[ServerApp]]
T0 = datetime(2024, 5, 1, 8, 0, 0, tzinfo=UTC)
BIN = Path(sys.executable).with_name("gridsense-server")
TELEMETRY = topic_for("gw-01", Kind.TELEMETRY)


def _rows(influx: tuple[InfluxDB, str], point: str) -> list[dict]:
    server, database = influx
    return server.points(f"SELECT value FROM temperature WHERE point='{point}'", database)


async def _token(http: httpx.AsyncClient, username: str, password: str) -> str:
    response = await http.post("/api/v1/auth/token",
                               json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def _client(app: ServerApp) -> httpx.AsyncClient:
    assert app.http_url is not None
    return httpx.AsyncClient(base_url=app.http_url, trust_env=False, timeout=30)


async def test_a_seq_beyond_64_bits_is_dead_lettered_and_ingest_goes_on(
    running_server: ServerApp, edge: EdgePublisher, influx: tuple[InfluxDB, str]
) -> None:
    poison = json.loads(encode(edge.telemetry([("gw-01.boiler", "temperature", 1.0, T0)])))
    poison["seq"] = 2**63  # valid JSON, once a valid message: the seq column cannot hold it
    raw = json.dumps(poison).encode()
    edge.publish_raw(TELEMETRY, raw)
    edge.publish(edge.telemetry([("gw-01.boiler", "temperature", 30.0, T0)]))
    [row] = await async_wait_until(lambda: _rows(influx, "gw-01.boiler"),
                                   what="the valid message after the poison one")
    assert row["value"] == 30.0
    await async_wait_until(lambda: running_server.dead_letters.count() == 1, what="dead letter")
    [letter] = running_server.dead_letters.recent()
    assert (letter.topic, letter.gateway, letter.payload) == (TELEMETRY, "gw-01", raw)
    assert letter.reason.startswith("bad_field:") and "'seq'" in letter.reason
    await async_wait_until(lambda: sum(len(ledger) for ledger in running_server.ledgers) == 0,
                           what="everything acknowledged")

    async with _client(running_server) as http:
        health = await http.get(f"{running_server.local_url}/healthz")
        assert health.status_code == 200
        assert health.json()["status"] == "degraded"
        assert "dead letters" in health.json()["reasons"][0]
        control = await _token(http, "control", "ctl")
        listed = await http.get("/api/v1/dead-letters",
                                headers={"Authorization": f"Bearer {control}"})
        assert listed.status_code == 200
        assert [d["reason"] for d in listed.json()] == [letter.reason]
        shown = await http.get(f"/api/v1/dead-letters/{letter.id}",
                               headers={"Authorization": f"Bearer {control}"})
        assert shown.json()["payload_base64"]
        worker = await _token(http, "worker-g01", "demo")
        refused = await http.get("/api/v1/dead-letters",
                                 headers={"Authorization": f"Bearer {worker}"})
        assert refused.status_code == 403


async def test_times_ahead_of_the_server_clock_are_refused_and_replayable_once_due(
    start_server: ServerFactory, edge: EdgePublisher, influx: tuple[InfluxDB, str]
) -> None:
    app = await start_server(ingest={"max_clock_ahead_s": 0})
    soon = utc_now() + timedelta(seconds=3)
    edge.publish(edge.telemetry([("gw-01.boiler", "temperature", 21.0, soon)]))
    edge.publish_raw(topic_for("gw-01", Kind.INCIDENT), b"{not json")
    await async_wait_until(lambda: app.dead_letters.count() == 2, what="two dead letters")
    assert app.counters.get("ingest.refused.clock_ahead") == 1
    reasons = sorted(d.reason.split(":")[0] for d in app.dead_letters.recent())
    assert reasons == ["clock_ahead", "malformed_json"]
    assert _rows(influx, "gw-01.boiler") == []

    await async_wait_until(lambda: utc_now() > soon, what="the reading's time")
    assert app.dead_letters.request_replay() == 2
    [row] = await async_wait_until(lambda: _rows(influx, "gw-01.boiler"), 20,
                                   what="the replayed reading")
    assert row["value"] == 21.0
    # The one still broken is a dead letter again, with its (same) reason.
    await async_wait_until(lambda: [d.reason.split(":")[0] for d in app.dead_letters.recent()]
                           == ["malformed_json"], 20, what="the broken one set aside again")
    assert app.counters.get("dead_letters.replayed") == 2


async def test_a_reading_older_than_the_store_keeps_is_refused_before_influx(
    start_server: ServerFactory, edge: EdgePublisher, influx: tuple[InfluxDB, str]
) -> None:
    app = await start_server(ingest={"max_age_s": 3600})
    now = utc_now()
    for value, age in ((5.0, timedelta(hours=2)), (6.0, timedelta(minutes=50))):
        edge.publish(edge.telemetry([("gw-01.boiler", "temperature", value, now - age)]))
    [row] = await async_wait_until(lambda: _rows(influx, "gw-01.boiler"), what="the backfill")
    assert row["value"] == 6.0
    await async_wait_until(lambda: app.dead_letters.count() == 1, what="the too old one")
    assert app.counters.get("ingest.refused.too_old") == 1


@pytest.mark.postgres
async def test_an_incident_postgresql_cannot_store_is_dead_lettered_and_the_next_is_applied(
    start_server: ServerFactory, edge: EdgePublisher, pg_url: str
) -> None:
    from sqlalchemy import text

    from gridsense_server.db.models import Incident as IncidentRow

    app = await start_server(db_url=pg_url)
    # A column narrower than the protocol allows (an operator's hand-made schema change, say):
    # a message valid to the protocol that PostgreSQL refuses with a DataError, never healed.
    with app.engine.begin() as connection:
        connection.execute(text("ALTER TABLE incidents ALTER COLUMN message TYPE varchar(40)"))
    poison = edge.incident("gw-01.boiler").model_copy(update={"message": "x" * 41})
    edge.publish(poison)
    good = edge.publish(edge.incident("gw-01.boiler", type="rapid_rise"))
    await async_wait_until(lambda: app.dead_letters.count() == 1, what="dead letter")
    [letter] = app.dead_letters.recent()
    assert letter.reason.startswith("incidents: ") and "too long" in letter.reason
    assert json.loads(letter.payload)["id"] == poison.id

    def applied() -> bool:
        with app.factory() as session:
            return session.query(IncidentRow).filter_by(type="rapid_rise").count() == 1
    await async_wait_until(applied, what=f"the incident after the poison one ({good.id})")
    await async_wait_until(lambda: sum(len(ledger) for ledger in app.ledgers) == 0,
                           what="both acknowledged")


async def test_points_beyond_influxdbs_retention_are_dead_lettered_not_retried(
    running_server: ServerApp, edge: EdgePublisher, influx: tuple[InfluxDB, str]
) -> None:
    server, database = influx
    server.query(f'CREATE RETENTION POLICY "short" ON "{database}" DURATION 1h REPLICATION 1 '
                 "DEFAULT")
    now = utc_now()
    old = edge.publish(edge.telemetry([("gw-01.boiler", "temperature", 8.0,
                                        now - timedelta(hours=3))]))
    edge.publish(edge.telemetry([("gw-01.boiler", "temperature", 9.0, now)]))
    [row] = await async_wait_until(lambda: _rows(influx, "gw-01.boiler"), what="the fresh one")
    assert row["value"] == 9.0
    await async_wait_until(lambda: running_server.dead_letters.count() == 1, what="dead letter")
    [letter] = running_server.dead_letters.recent()
    assert "beyond retention policy" in letter.reason
    assert json.loads(letter.payload)["id"] == old.id
    await async_wait_until(lambda: sum(len(ledger) for ledger in running_server.ledgers) == 0,
                           what="both acknowledged")
    assert running_server.counters.get("influx.rejected_batches") >= 1


async def test_health_is_down_with_the_reason_when_ingest_stalls(
    start_server: ServerFactory, edge: EdgePublisher, influx: tuple[InfluxDB, str]
) -> None:
    # No spool: a reading is acknowledged only once InfluxDB has it, so InfluxDB away stalls.
    app = await start_server(spool_max_mb=0, ingest={"stall_after_s": 1})
    server, _ = influx
    async with _client(app) as http:
        assert (await http.get("/healthz")).json()["status"] == "ok"
        server.stop()
        edge.publish(edge.telemetry([("gw-01.boiler", "temperature", 7.0, T0)]))

        async def reasons_when_down() -> str:
            response = await http.get(f"{app.local_url}/healthz")
            return " | ".join(response.json()["reasons"]) if response.status_code == 503 else ""
        reasons = await async_wait_until(reasons_when_down, 30, what="healthz 503")
        assert "InfluxDB" in reasons and "unreachable" in reasons
        assert "ingest stalled" in await _wait_reason(reasons_when_down, "ingest stalled")
        server.start()
        await async_wait_until(lambda: _rows(influx, "gw-01.boiler"), 60, what="the reading")

        async def up() -> bool:
            return (await http.get("/healthz")).status_code == 200
        await async_wait_until(up, 30, what="healthz 200 again")


async def _wait_reason(reasons: Callable[[], Awaitable[str]], wanted: str) -> str:
    async def has() -> str:
        text = await reasons()
        return text if wanted in text else ""
    return await async_wait_until(has, 30, what=f"healthz naming {wanted!r}")


@pytest.mark.parametrize("db_kind", ["sqlite", pytest.param("postgres",
                                                            marks=pytest.mark.postgres)])
def test_the_store_is_capped_oldest_dropped_and_counted(
    db_kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = (f"sqlite:///{tmp_path / 'dl.db'}" if db_kind == "sqlite"
           else request.getfixturevalue("pg_url"))
    engine = make_engine(url)
    upgrade(engine)
    store = DeadLetterStore(make_session_factory(engine), max_rows=3)
    for i in range(5):
        store.add([new_dead_letter(TELEMETRY, "gw-01", f"reason {i}", bytes([i]) * 10)])
    assert [d.reason for d in store.recent()] == ["reason 4", "reason 3", "reason 2"]
    assert store.dropped() == 2
    assert store.purge(gateway="gw-01") == 3
    engine.dispose()


def test_the_cli_lists_shows_marks_for_replay_and_purges(tmp_path: Path) -> None:
    config = write_server_config(tmp_path, mqtt_port=1, influx_url="http://127.0.0.1:1",
                                 database="x", registry=None)
    engine = make_engine(f"sqlite:///{tmp_path / 'state' / 'server.db'}")
    upgrade(engine)
    store = DeadLetterStore(make_session_factory(engine), max_rows=10)
    store.add([new_dead_letter(TELEMETRY, "gw-01", "bad_field: seq", b'{"seq": 1}'),
               new_dead_letter("gridsense/v1/gw-02/incident", "gw-02", "malformed_json", b"{")])
    engine.dispose()

    def cli(*args: str) -> dict:
        result = subprocess.run([str(BIN), "dead-letters", *args, "--config", str(config),
                                 "--json"], capture_output=True, text=True, timeout=120,
                                env=env_without_proxies())
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    listed = cli("list")
    assert [d["gateway"] for d in listed["dead_letters"]] == ["gw-02", "gw-01"]
    first = listed["dead_letters"][1]["id"]
    assert cli("show", str(first))["payload_base64"] == "eyJzZXEiOiAxfQ=="
    assert cli("replay", str(first)) == {"marked": 1}
    assert cli("list", "--gateway", "gw-01")["dead_letters"][0]["replay_requested"] is True
    assert cli("purge", "--gateway", "gw-02") == {"purged": 1}
    assert cli("list")["total"] == 1


def test_a_payload_too_large_to_replay_keeps_only_its_head(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'dl.db'}")
    upgrade(engine)
    store = DeadLetterStore(make_session_factory(engine), max_rows=10)
    store.add([new_dead_letter(TELEMETRY, "gw-01", "oversized", b"x" * 2_000_000)])
    [letter] = store.recent()
    assert (letter.size, len(letter.payload)) == (2_000_000, 4096)
    engine.dispose()


async def test_a_settle_round_the_database_refuses_for_good_is_not_retried_forever(
    tmp_path: Path,
) -> None:
    from sqlalchemy import text

    from gridsense_server.acks import AckLedger, InboundMessage
    from gridsense_server.counters import Counters
    from gridsense_server.db.sequences import SequenceStore
    from gridsense_server.ingest.settle import Settler

    engine = make_engine(f"sqlite:///{tmp_path / 'settle.db'}")
    upgrade(engine)
    with engine.begin() as connection:  # a schema error: no retry can heal it
        connection.execute(text("DROP TABLE gateway_sequences"))
    counters = Counters()
    settler = Settler(SequenceStore(make_session_factory(engine)), counters)
    refused: list[str] = []
    settler.on_refused = lambda message, reason: refused.append(reason)
    acked: list[tuple[int, int, int]] = []
    ledger = AckLedger(acked.extend, lambda: 1, settler.submit)
    settler.start()
    try:
        edge_time = utc_now()
        for seq in (1, 2):
            message = InboundMessage(
                Telemetry(gateway="gw-01", seq=seq, ts=edge_time, readings=[
                    Reading(point="gw-01.t", metric="temperature", value=1.0, unit="C",
                            ts=edge_time)]), (1, seq, 1), TELEMETRY, b"{}")
            ledger.register(message, NO_EFFECTS)
        await async_wait_until(lambda: len(acked) == 2, 10, what="both acknowledged")
    finally:
        await settler.stop()
        engine.dispose()
    assert len(refused) == 2 and all("no such table" in r for r in refused)
    assert counters.get("ingest.sequence_refused") == 2
    assert counters.get("ingest.sequence_retries") == 0


async def test_a_replayed_dead_letter_stays_stored_until_its_replay_settles(
    tmp_path: Path,
) -> None:
    from gridsense_server.acks import AckLedger
    from gridsense_server.counters import Counters
    from gridsense_server.ingest.dead_letters import DeadLetterSink
    from gridsense_server.ingest.handoff import Handoff

    engine = make_engine(f"sqlite:///{tmp_path / 'dl.db'}")
    upgrade(engine)
    store = DeadLetterStore(make_session_factory(engine), max_rows=10)
    edge_message = Telemetry(gateway="gw-01", seq=7, ts=T0, readings=[
        Reading(point="gw-01.boiler", metric="temperature", value=21.0, unit="°C", ts=T0)])
    store.add([new_dead_letter(TELEMETRY, "gw-01", "clock_ahead: later", encode(edge_message))])
    assert store.request_replay() == 1
    loop = asyncio.get_running_loop()

    def sink() -> DeadLetterSink:
        made = DeadLetterSink(store, Counters())
        made.replay_into = Handoff(10, loop)
        return made

    first = sink()
    assert await first.replay_requested() == 1
    assert first.replay_into is not None
    [message] = await first.replay_into.get_batch(10)
    # Handed back to ingest, not settled: a crash now must lose nothing.
    assert [d.replay_requested for d in store.recent()] == [True]
    assert await first.replay_requested() == 0  # not handed back twice by the same process
    assert await sink().replay_requested() == 1  # the next process's start replays it again

    ledger = AckLedger(lambda tokens: None, lambda: 0, lambda m: ledger.settled(m))
    ledger.register(message, NO_EFFECTS)  # applied: nothing left to make durable
    await first.replay_requested()
    assert store.count() == 0
    engine.dispose()
