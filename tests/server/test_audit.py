"""The audit log on a real server (SQLite and PostgreSQL): what is recorded, read back with
filters and pages, exported as CSV (formulas defused), never changeable through the API,
pruned by retention in capped batches; the refusal sink stays bounded; the CLI reads it."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from server_helpers import EdgePublisher, async_wait_until
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from web_support import client, sign_in, token

from gridsense_devtools.processes import BIN, env_without_proxies
from gridsense_protocol import utc_now
from gridsense_server.app import ServerApp
from gridsense_server.audit import RefusalSink
from gridsense_server.audit.log import entry
from gridsense_server.audit.retention import prune
from gridsense_server.counters import Counters
from gridsense_server.db.web_models import AuditEntry

HOSTILE_NAME = "=HYPERLINK(\"http://evil\")"


def _actions(app: ServerApp) -> list[str]:
    with app.factory() as session:
        return list(session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))


async def test_every_kind_of_action_is_recorded_and_read_back_by_the_control_room(
    start_server, edge: EdgePublisher, db_url: str
) -> None:
    app = await start_server(db_url=db_url)
    edge.publish(edge.incident("gw-01.boiler"))
    await async_wait_until(lambda: app.counters.get("incidents.opened") == 1)
    async with client(app) as http:
        assert (await http.post("/api/v1/auth/session", json={
            "username": HOSTILE_NAME, "password": "x"})).status_code == 401
        control = await sign_in(http, "control")
        incident = (await http.get("/api/v1/incidents", headers=control.headers())).json()[0]
        accepted = await http.post(f"/api/v1/incidents/{incident['id']}/accept",
                                   headers=control.headers(), json={"note": "on it"})
        assert accepted.status_code == 200, accepted.text
        assert (await http.post("/api/v1/silences", headers=control.headers(), json={
            "grid": "g01", "minutes": 5})).status_code == 201
        assert (await http.post("/api/v1/communities/ly/credentials", headers=control.headers(),
                                json={"id": "r-001", "holder": "张伟", "card": "100200",
                                      "doors": ["*"]})
                ).status_code == 201
        assert (await http.post("/api/v1/dead-letters/replay", headers=control.headers(),
                                json={"ids": [1]})).status_code == 200
        app.refusals.refuse("gateway:gw-09", "security.refused", "gw-09/incident",
                            {"reason": "not its points"}, "10.0.0.9")
        await async_wait_until(lambda: {"config.push", "security.refused"} <= set(
            _actions(app)), 20, "the credential push and the refusal recorded")
        assert (await http.delete("/api/v1/auth/session",
                                  headers=control.headers())).status_code == 204

        actions = _actions(app)
        assert actions[0] == "registry.load"  # at start-up, by the server itself
        for expected in ("login.failure", "login.success", "incident.accept", "silence.create",
                         "credential.put", "config.push", "dead_letters.replay",
                         "security.refused", "logout"):
            assert expected in actions, expected

        reader = await token(http, "control")
        auth = {"Authorization": f"Bearer {reader}"}

        async def read(**params: str | int) -> dict:
            response = await http.get("/api/v1/audit", headers=auth, params=params)
            assert response.status_code == 200, response.text
            return response.json()

        accept = (await read(action="incident.accept"))["entries"]
        assert [(e["actor"], e["target"], e["address"]) for e in accept] == [
            ("control", incident["id"], "127.0.0.1")]
        assert json.loads(accept[0]["detail"]) == {"from": "new", "to": "accepted",
                                                   "note": "on it"}
        logins = (await read(action="login."))["entries"]
        assert [e["action"] for e in logins] == ["login.success", "login.success",
                                                 "login.failure"]  # newest first
        assert {e["actor"] for e in (await read(actor="control"))["entries"]} == {"control"}
        assert (await read(target="ly"))["entries"] == []
        later = (utc_now() + timedelta(hours=1)).isoformat()
        assert (await read(since=later))["entries"] == []
        assert len((await read(until=later))["entries"]) == len(actions) + 1  # + token login

        pages, before = [], None
        while True:
            found = await read(limit=3, **({"before_id": before} if before else {}))
            pages.extend(found["entries"])
            before = found["next_before_id"]
            if before is None:
                break
        assert [e["id"] for e in pages] == sorted((e["id"] for e in pages), reverse=True)
        assert len(pages) == len(actions) + 1

        exported = await http.get("/api/v1/audit.csv", headers=auth)
        assert exported.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(exported.text)))
        assert [r["id"] for r in rows] == sorted((r["id"] for r in rows), key=int)
        assert len(rows) == len(pages)
        assert "'" + HOSTILE_NAME in {r["target"] for r in rows}  # a formula defused

        worker = await token(http, "worker-g01")
        refused = await http.get("/api/v1/audit", headers={"Authorization": f"Bearer {worker}"})
        assert refused.status_code == 403


async def test_the_api_cannot_change_or_delete_an_entry(start_server) -> None:
    app = await start_server()
    async with client(app) as http:
        auth = {"Authorization": f"Bearer {await token(http, 'control')}"}
        before = _actions(app)
        for method in ("PUT", "PATCH", "DELETE", "POST"):
            for path in ("/api/v1/audit", "/api/v1/audit/1", "/api/v1/audit.csv"):
                answer = await http.request(method, path, headers=auth, json={"actor": "x"})
                assert answer.status_code in (404, 405), (method, path, answer.status_code)
        schema = (await http.get("/openapi.json")).json()
    assert _actions(app) == before
    audit_paths = {p: set(ops) for p, ops in schema["paths"].items() if "audit" in p}
    assert audit_paths == {"/api/v1/audit": {"get"}, "/api/v1/audit.csv": {"get"}}


@pytest.fixture
def factory(migrated_factory: sessionmaker[Session]) -> sessionmaker[Session]:
    return migrated_factory


def _count(factory: sessionmaker[Session]) -> int:
    with factory() as session:
        return session.scalar(select(func.count()).select_from(AuditEntry)) or 0


def test_retention_prunes_old_rows_a_capped_batch_at_a_time(
    factory: sessionmaker[Session],
) -> None:
    old = utc_now() - timedelta(days=40)
    with factory.begin() as session:
        session.add_all([entry("control", "login.success", "control", at=old + timedelta(s))
                         for s in range(5)] + [entry("control", "logout", "control")])
    assert prune(factory, retention_days=30, batch=2) == 2
    assert prune(factory, retention_days=30, batch=2) == 2
    assert prune(factory, retention_days=30, batch=2) == 1
    assert prune(factory, retention_days=30, batch=2) == 0
    assert _count(factory) == 1


async def test_the_server_prunes_by_itself(start_server) -> None:
    app = await start_server(audit={"retention_days": 1, "prune_every_s": 0.2,
                                    "prune_batch": 2})
    old = utc_now() - timedelta(days=2)
    with app.factory.begin() as session:
        session.add_all([entry("control", "login.success", "control", at=old)
                         for _ in range(5)])
    await async_wait_until(lambda: app.counters.get("audit.pruned") >= 5, 30, "old rows pruned")
    assert "registry.load" in _actions(app)  # today's rows stay


def test_the_refusal_sink_is_bounded_and_counts_what_it_drops(
    factory: sessionmaker[Session],
) -> None:
    counters = Counters()
    sink = RefusalSink(factory, counters, max_queued=3)
    for n in range(5):
        sink.refuse("gateway:gw-09", "security.refused", f"topic-{n}", "not its points")
    assert (counters.get("audit.refusals"), counters.get("audit.refusals_dropped")) == (3, 2)
    assert sink.flush() == 3 and sink.flush() == 0
    assert _count(factory) == 3


async def test_the_cli_lists_and_exports(start_server, tmp_path: Path) -> None:
    app = await start_server()
    async with client(app) as http:
        await sign_in(http, "worker-g01")
    base = [str(BIN / "gridsense-server"), "audit"]
    config = ["--config", str(tmp_path / "server.yaml")]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*base, *args, *config], capture_output=True, text=True,
                              timeout=120, env=env_without_proxies(), check=False)

    listed = await asyncio.to_thread(run, "list", "--json", "--action", "login.")
    assert listed.returncode == 0, listed.stderr
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [(r["actor"], r["action"]) for r in rows] == [("worker-g01", "login.success")]
    out = tmp_path / "audit.csv"
    exported = await asyncio.to_thread(run, "export", "-o", str(out), "--actor", "system")
    assert exported.returncode == 0, exported.stderr
    assert "1 rows written" in exported.stderr
    assert [r["action"] for r in csv.DictReader(out.open(encoding="utf-8"))] == [
        "registry.load"]
