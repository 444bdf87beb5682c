"""Gateway authority against the real broker, database and InfluxDB: a gateway speaks only for
the points the registry assigns it (whatever the ids look like), a registry load moves that
right at once, and an installer's unregistered sensor is kept, capped and listed."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from server_helpers import EdgePublisher, async_wait_until
from sqlalchemy import select

from gridsense_devtools.community import registry_yaml
from gridsense_devtools.processes import env_without_proxies
from gridsense_devtools.services import InfluxDB, Mosquitto
from gridsense_protocol import AccessEvent, AccessResult, Severity, utc_now
from gridsense_server.app import ServerApp
from gridsense_server.db import make_engine, make_session_factory, upgrade
from gridsense_server.db.access_models import AccessLogEntry
from gridsense_server.db.models import Incident, IncidentTransition, Notification
from gridsense_server.db.unassigned import Sighting, UnassignedStore
from gridsense_server.db.web_models import AuditEntry
from gridsense_server.registry.registry_file import parse_registry
from gridsense_server.registry.store import apply_registry

ServerFactory = Callable[..., Awaitable[ServerApp]]
BIN = Path(sys.executable).with_name("gridsense-server")
T0 = datetime(2024, 5, 1, 8, 0, 0, tzinfo=UTC)
# No id says which gateway it is on; one says the wrong one: ownership is the registry's.
POINTS = {"boiler-b1": ("gw-01", "g01-a"), "reader-b1": ("gw-01", "g01-a"),
          "gw-02.lobby": ("gw-01", "g01"), "boiler-b2": ("gw-02", "g02-a")}


@pytest.fixture
def registry_file(tmp_path: Path) -> Path:
    path = tmp_path / "registry.yaml"
    path.write_text(registry_yaml(POINTS), encoding="utf-8")
    return path


@pytest.fixture
def gw02(mosquitto: Mosquitto) -> Iterator[EdgePublisher]:
    publisher = EdgePublisher(mosquitto.port, "gw-02")
    yield publisher
    publisher.close()


def _rows(influx: tuple[InfluxDB, str], point: str, measurement: str = "temperature") -> list:
    server, database = influx
    return server.points(f"SELECT * FROM {measurement} WHERE point='{point}'", database)


def _granted(edge: EdgePublisher, point: str, door: str) -> AccessEvent:
    return AccessEvent(gateway=edge.gateway, seq=edge.next_seq(), ts=utc_now(), point=point,
                       door=door, result=AccessResult.GRANTED, method="card",
                       credential="alice", card="0123456789abcdef")


def _query(app: ServerApp, statement: Any) -> list[Any]:
    with app.factory() as session:
        return list(session.scalars(statement))


def _all_acked(app: ServerApp) -> bool:
    return sum(len(ledger) for ledger in app.ledgers) == 0


async def _get(app: ServerApp, path: str, username: str, **params: str) -> httpx.Response:
    assert app.http_url is not None
    async with httpx.AsyncClient(base_url=app.http_url, trust_env=False, timeout=30) as http:
        token = (await http.post("/api/v1/auth/token", json={
            "username": username, "password": "demo"})).json()["access_token"]
        return await http.get(path, params=params, headers={"Authorization": f"Bearer {token}"})


def _cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(BIN), *args, "--config", str(config)], capture_output=True,
                            text=True, timeout=120, env=env_without_proxies())
    assert result.returncode == 0, result.stderr
    return result


async def test_a_gateway_cannot_speak_for_another_gateways_points(
    running_server: ServerApp, edge: EdgePublisher, gw02: EdgePublisher,
    influx: tuple[InfluxDB, str], caplog: pytest.LogCaptureFixture,
) -> None:
    app = running_server
    caplog.set_level(logging.WARNING, logger="gridsense_server.ingest.authority")
    forged_incident = gw02.incident("boiler-b1", value=99.0).model_copy(
        update={"severity": Severity.CRITICAL})
    gw02.publish(forged_incident)
    gw02.publish(gw02.telemetry([("boiler-b1", "temperature", 99.0, T0)]))
    gw02.publish(_granted(gw02, "reader-b1", "b1-main"))
    gw02.publish(gw02.telemetry([("gw-02.lobby", "temperature", 98.0, T0)]))
    # gw-02's own traffic after the forged messages, and gw-01's: applied and acknowledged.
    gw02.publish(gw02.telemetry([("boiler-b2", "temperature", 21.0, T0)]))
    own = gw02.publish(gw02.incident("boiler-b2"))
    gw02.publish(_granted(gw02, "boiler-b2", "b2-main"))
    edge.publish(edge.telemetry([("boiler-b1", "temperature", 22.0, T0)]))

    [reading] = await async_wait_until(lambda: _rows(influx, "boiler-b2"), what="gw-02's own")
    assert (reading["gateway"], reading["grid"], reading["value"]) == ("gw-02", "g02-a", 21.0)
    [honest] = await async_wait_until(lambda: _rows(influx, "boiler-b1"), what="gw-01's own")
    assert (honest["gateway"], honest["value"]) == ("gw-01", 22.0)
    await async_wait_until(lambda: app.dead_letters.count() == 4, what="four dead letters")
    await async_wait_until(lambda: _all_acked(app), what="everything acknowledged")
    # The own incident paged its grid's worker: the escalation ran past the forged one.
    await async_wait_until(lambda: _query(app, select(Notification.recipient).where(
        Notification.recipient == "worker-g02")), 30, what="gw-02's incident paged")

    reasons = sorted(letter.reason for letter in app.dead_letters.recent())
    assert reasons == [
        "not_owner: point boiler-b1 belongs to gateway gw-01, not gw-02",
        "not_owner: point boiler-b1 belongs to gateway gw-01, not gw-02",
        "not_owner: point gw-02.lobby belongs to gateway gw-01, not gw-02",
        "not_owner: point reader-b1 belongs to gateway gw-01, not gw-02",
    ]
    assert {letter.gateway for letter in app.dead_letters.recent()} == {"gw-02"}
    assert app.counters.get("ingest.refused.not_owner") == 4
    [stored] = _query(app, select(Incident))
    assert (stored.point_id, stored.first_event_id) == ("boiler-b2", own.id)
    assert [r.point_id for r in _query(app, select(AccessLogEntry))] == ["boiler-b2"]
    assert _rows(influx, "reader-b1", "access") == [] and _rows(influx, "gw-02.lobby") == []
    assert [honest["value"] for honest in _rows(influx, "boiler-b1")] == [22.0]
    assert _query(app, select(Notification).where(Notification.recipient == "worker-g01")) == []
    warnings = [r.getMessage() for r in caplog.records
                if r.getMessage().startswith("message_refused_not_owner")]
    assert any("gateway=gw-02" in w and "point=reader-b1" in w and "owner=gw-01" in w
               for w in warnings), warnings

    listed = await _get(app, "/api/v1/dead-letters", "control", gateway="gw-02")
    assert sorted(d["reason"] for d in listed.json()) == reasons
    healthz = await _get(app, "/healthz", "control")
    assert healthz.json()["ingest.refused.not_owner"] == 4
    # Audited too: who (the publishing gateway), what, which point, readable by the control room.
    await async_wait_until(lambda: len(_query(app, select(AuditEntry).where(
        AuditEntry.action == "mqtt.refused_not_owner"))) == 4, what="four audit entries")
    audited = (await _get(app, "/api/v1/audit", "control",
                          action="mqtt.refused_not_owner")).json()
    assert sorted(e["target"] for e in audited["entries"]) == [
        "boiler-b1", "boiler-b1", "gw-02.lobby", "reader-b1"]
    assert {e["actor"] for e in audited["entries"]} == {"gateway:gw-02"}


async def test_a_registry_load_by_the_cli_moves_a_point_to_its_new_gateway_at_once(
    running_server: ServerApp, gw02: EdgePublisher, influx: tuple[InfluxDB, str],
    tmp_path: Path,
) -> None:
    app = running_server
    gw02.publish(gw02.telemetry([("boiler-b1", "temperature", 30.0, T0)]))
    await async_wait_until(lambda: app.dead_letters.count() == 1, what="refused while gw-01's")

    moved = tmp_path / "moved.yaml"
    moved.write_text(registry_yaml({**POINTS, "boiler-b1": ("gw-02", "g01-a")}),
                     encoding="utf-8")
    # Another process, as an installer would: the running server polls the registry version.
    _cli(tmp_path / "server.yaml", "load-registry", str(moved))
    await async_wait_until(lambda: app.directory.gateway_of("boiler-b1") == "gw-02", 30,
                           what="the running server following the new registry")

    gw02.publish(gw02.telemetry([("boiler-b1", "temperature", 31.0, T0 + timedelta(seconds=1))]))
    [row] = await async_wait_until(lambda: _rows(influx, "boiler-b1"), what="now accepted")
    assert (row["gateway"], row["grid"], row["value"]) == ("gw-02", "g01-a", 31.0)
    # The refused one is replayable now that the registry says it is gw-02's.
    assert app.dead_letters.request_replay() == 1
    await async_wait_until(lambda: len(_rows(influx, "boiler-b1")) == 2, 30, what="replayed")
    # It leaves the store once its replay has settled (the replay loop's next round).
    await async_wait_until(lambda: app.dead_letters.count() == 0, 30, what="the letter gone")
    assert app.counters.get("ingest.refused.not_owner") == 1


async def test_unregistered_points_are_kept_capped_listed_and_reach_the_control_room_only(
    start_server: ServerFactory, edge: EdgePublisher, influx: tuple[InfluxDB, str],
    tmp_path: Path,
) -> None:
    app = await start_server(ingest={"unassigned_points_max": 3})
    # One at a time: the events and telemetry sessions do not keep order between them.
    edge.publish(edge.telemetry([("new-1", "temperature", 20.0, T0),
                                 ("new-2", "temperature", 21.0, T0),
                                 ("new-1", "temperature", 20.5, T0 + timedelta(seconds=1))]))
    rows = await async_wait_until(lambda: len(_rows(influx, "new-1")) == 2 and
                                  _rows(influx, "new-1"), what="the unregistered readings")
    assert {(r["gateway"], r["grid"]) for r in rows + _rows(influx, "new-2")} == {
        ("gw-01", "unassigned")}
    edge.publish(_granted(edge, "new-door", "b9-side"))
    [door] = await async_wait_until(lambda: _query(app, select(AccessLogEntry)), what="door")
    assert (door.point_id, door.grid_id) == ("new-door", None)
    new_incident = edge.publish(edge.incident("new-1", value=80.0))
    [incident] = await async_wait_until(lambda: _query(app, select(Incident)), what="incident")
    capped = edge.publish(edge.telemetry([("new-3", "temperature", 22.0, T0),
                                          ("boiler-b1", "temperature", 23.0, T0)]))
    await async_wait_until(lambda: app.dead_letters.count() == 1, what="the one over the cap")
    [letter] = app.dead_letters.recent()
    assert letter.reason.startswith("unassigned_cap: gateway gw-01 already reports 3 points")
    assert "new-3" in letter.reason and json.loads(letter.payload)["id"] == capped.id
    assert app.counters.get("ingest.refused.unassigned_cap") == 1
    assert _rows(influx, "new-3") == [] and _rows(influx, "boiler-b1") == []

    # Its incident: stored without a grid, escalated to nobody in a grid, seen by control.
    assert (incident.point_id, incident.grid_id, incident.first_event_id) == (
        "new-1", None, new_incident.id)
    [step] = await async_wait_until(lambda: _query(app, select(IncidentTransition).where(
        IncidentTransition.action == "escalate")), 30, what="the first escalation step")
    assert "nobody on record" in step.note
    assert _query(app, select(Notification)) == []
    for_control = await _get(app, "/api/v1/incidents", "control")
    assert [i["id"] for i in for_control.json()] == [incident.id]
    for_worker = await _get(app, "/api/v1/incidents", "worker-g01")
    assert for_worker.json() == []

    async def listed() -> list[dict[str, Any]]:
        points = (await _get(app, "/api/v1/unassigned-points", "control")).json()
        counts = {p["point"]: p["count"] for p in points}
        return points if counts == {"new-1": 3, "new-2": 1, "new-door": 1} else []
    by_point = {p["point"]: p for p in await async_wait_until(listed, 30, what="the list")}
    assert {p["gateway"] for p in by_point.values()} == {"gw-01"}
    # new-1: two readings and the incident; its times are the devices'.
    assert by_point["new-1"]["first_seen"].startswith("2024-05-01T08:00:00")
    assert by_point["new-1"]["last_seen"] > by_point["new-1"]["first_seen"]
    refused = await _get(app, "/api/v1/unassigned-points", "worker-g01")
    assert refused.status_code == 403
    config = tmp_path / "server.yaml"
    printed = json.loads(_cli(config, "unassigned", "list", "--json").stdout)["unassigned_points"]
    assert sorted(p["point"] for p in printed) == ["new-1", "new-2", "new-door"]
    assert "new-door" in _cli(config, "unassigned", "list", "--gateway", "gw-01").stdout

    # Registering one takes it off the list and frees its place under the cap.
    registered = tmp_path / "registered.yaml"
    registered.write_text(registry_yaml({**POINTS, "new-1": ("gw-01", "g01-a")}),
                          encoding="utf-8")
    _cli(config, "load-registry", str(registered))
    await async_wait_until(lambda: "new-1" not in app.unassigned.points_of("gw-01"), 30,
                           what="new-1 assigned")
    assert [p["point"] for p in (await _get(app, "/api/v1/unassigned-points", "control")
                                 ).json()] == ["new-door", "new-2"]
    assert app.dead_letters.request_replay() == 1
    [row] = await async_wait_until(lambda: _rows(influx, "new-3"), 30, what="new-3 replayed")
    assert row["grid"] == "unassigned"
    edge.publish(edge.telemetry([("new-1", "temperature", 25.0, T0 + timedelta(seconds=2))]))
    await async_wait_until(lambda: [r["grid"] for r in _rows(influx, "new-1")][-1:] == ["g01-a"],
                           what="new-1 now in its grid")


async def test_a_cap_of_zero_refuses_every_unregistered_point(
    start_server: ServerFactory, edge: EdgePublisher, influx: tuple[InfluxDB, str],
) -> None:
    app = await start_server(ingest={"unassigned_points_max": 0})
    edge.publish(edge.incident("stray"))
    edge.publish(edge.telemetry([("boiler-b1", "temperature", 24.0, T0)]))
    await async_wait_until(lambda: _rows(influx, "boiler-b1"), what="the registered reading")
    await async_wait_until(lambda: app.dead_letters.count() == 1, what="the stray incident")
    assert _query(app, select(Incident)) == []
    assert app.counters.get("ingest.refused.unassigned_cap") == 1


@pytest.mark.parametrize("db_kind", ["sqlite", pytest.param("postgres",
                                                            marks=pytest.mark.postgres)])
def test_the_list_merges_sightings_and_a_registry_load_drops_assigned_points(
    db_kind: str, tmp_path: Path, request: pytest.FixtureRequest,
) -> None:
    url = (f"sqlite:///{tmp_path / 'u.db'}" if db_kind == "sqlite"
           else request.getfixturevalue("pg_url"))
    engine = make_engine(url)
    upgrade(engine)
    factory = make_session_factory(engine)
    try:
        apply_registry(factory, parse_registry(registry_yaml(POINTS)))
        store = UnassignedStore(factory)
        t1, t2, t3 = (T0 + timedelta(minutes=m) for m in (1, 2, 3))
        store.add({("gw-01", "new-1"): Sighting(t2, t2, 2),
                   ("gw-02", "new-1"): Sighting(t1, t1, 1)})
        # Another process's sightings of the same point: earlier and later ones, merged.
        store.add({("gw-01", "new-1"): Sighting(t1, t3, 5), ("gw-01", "boiler-b1"):
                   Sighting(t1, t1, 1)})
        rows = {(r.gateway, r.point): (r.first_seen, r.last_seen, r.count) for r in store.all()}
        assert rows == {("gw-01", "new-1"): (t1, t3, 7), ("gw-02", "new-1"): (t1, t1, 1)}
        # More than one statement's worth of rows at once (a flood of made-up ids).
        store.add({("gw-03", f"x{i:04d}"): Sighting(t1, t2, 1) for i in range(2500)})
        stats = apply_registry(factory, parse_registry(registry_yaml(
            {**POINTS, "new-1": ("gw-02", "g02")})))
        assert stats["unassigned.assigned"] == 2
        assert {r.gateway for r in store.all()} == {"gw-03"}
        assert len(store.keys()) == 2500
    finally:
        engine.dispose()


def test_migration_0008_adds_the_list_and_the_version_and_its_downgrade_removes_them(
    db_url: str,
) -> None:
    from sqlalchemy import inspect

    from gridsense_server.db.migrate import current_revision, downgrade

    engine = make_engine(db_url)
    try:
        upgrade(engine, "0007")
        factory = make_session_factory(engine)
        apply_points = parse_registry(registry_yaml(POINTS))
        upgrade(engine, "0008")
        assert current_revision(engine) == "0008"
        assert {"unassigned_points", "registry_version"} <= set(inspect(engine).get_table_names())
        upgrade(engine)  # a registry load writes the audit log of a later revision
        apply_registry(factory, apply_points)
        UnassignedStore(factory).add({("gw-01", "new-1"): Sighting(T0, T0, 1)})
        assert [r.point for r in UnassignedStore(factory).all()] == ["new-1"]
        downgrade(engine, "0007")
        assert not {"unassigned_points", "registry_version"} & set(
            inspect(engine).get_table_names())
        assert "points" in inspect(engine).get_table_names()
    finally:
        engine.dispose()
