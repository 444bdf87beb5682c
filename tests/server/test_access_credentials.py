"""Credentials per community on SQLite and PostgreSQL: CSV import, versions, sync changes."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import HTTPException
from server_helpers import REGISTRY_YAML, async_wait_until
from sqlalchemy.orm import Session, sessionmaker

from gridsense_protocol import (
    MAX_PAYLOAD_BYTES,
    Command,
    CommandResult,
    Kind,
    encode,
    new_event_id,
    topic_for,
    utc_now,
)
from gridsense_protocol.access_hash import keyed_hash
from gridsense_server.access_control import credentials as creds
from gridsense_server.access_control.parts import split
from gridsense_server.access_control.sync import CredentialSync
from gridsense_server.api.access_routes import _manager, managed_communities
from gridsense_server.counters import Counters
from gridsense_server.db import make_engine, make_session_factory, upgrade
from gridsense_server.db.access_models import AccessSite, Credential, GatewayCredentials
from gridsense_server.db.models import Community
from gridsense_server.registry.registry_file import parse_registry
from gridsense_server.registry.store import apply_registry
from gridsense_server.registry.viewers import Viewer

CSV = """id,holder,card,pin,valid_from,valid_until,doors,buildings
r-001,张伟,00100200,,,,b1-main;b1-back,
r-002,李娜,,4711,2026-01-01T00:00:00+08:00,2027-01-01T00:00:00+08:00,,b1
r-003,王芳,300400,2468,,,*,
"""


class Publications:
    """Stands in for the MQTT bridge: what credential sync hands it to publish."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bool]] = []

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> bool:
        self.sent.append((topic, payload, retain))
        return True


@pytest.fixture
def factory(db_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(db_url)
    upgrade(engine)
    made = make_session_factory(engine)
    apply_registry(made, parse_registry(REGISTRY_YAML))
    yield made
    engine.dispose()


def test_csv_import_hashes_numbers_and_bumps_one_version(
    factory: sessionmaker[Session],
) -> None:
    items = creds.parse_csv(CSV)
    with factory.begin() as session:
        assert creds.upsert(session, "ly", items) == 1
    with factory() as session:
        site = session.get(AccessSite, "ly")
        assert site is not None and site.version == 1
        row = session.get(Credential, "r-001")
        assert row is not None and row.card_last4 == "0200" and row.version == 1
        assert row.card_hash == keyed_hash(bytes.fromhex(site.secret), "card", "100200")
        assert row.doors == ["b1-main", "b1-back"]
        views = [creds.CredentialView.of(r) for r in creds.list_credentials(session, "ly")]
        assert [v.id for v in views] == ["r-001", "r-002", "r-003"]
        assert "100200" not in repr([v.model_dump() for v in views])
        assert views[1].has_pin and views[1].valid_until is not None


@pytest.mark.parametrize(("text", "problem"), [
    ("id,holder,card\nr-1,A,12x4\n", "line 2: card:"),
    ("id,holder,card,doors\nr-1,A,1234,d1\nr-2,B,,d1\n", "line 3: "),
    ("id,holder,card,doors\nr-1,A,1234,d1\nr-1,B,5678,d1\n", "line 3: id: 'r-1' appears twice"),
    ("id,holder,card\nr-1,A,1234\n", "must name doors"),
    ("id,name\nr-1,A\n", "line 1: header"),
    ("id,holder,card,valid_until,doors\nr-1,A,1234,2026-01-01T00:00:00,d\n", "time zone"),
])
def test_csv_problems_name_line_and_field_and_never_the_number(text: str, problem: str) -> None:
    with pytest.raises(creds.CredentialProblem) as info:
        creds.parse_csv(text)
    assert any(problem in p for p in info.value.problems), info.value.problems
    assert "12x4" not in str(info.value) and "5678" not in str(info.value)


def test_changes_since_gives_deltas_then_snapshots(factory: sessionmaker[Session]) -> None:
    with factory.begin() as session:
        creds.upsert(session, "ly", creds.parse_csv(CSV))  # version 1
    with factory.begin() as session:
        community, version = creds.revoke(session, "r-002")  # version 2
    assert (community, version) == ("ly", 2)
    with factory.begin() as session:
        creds.upsert(session, "ly", [creds.CredentialInput(
            id="r-004", holder="赵", card="555", doors=["b1-main"])])  # version 3
    with factory() as session:
        delta = creds.changes_since(session, "ly", 1)
        assert not delta.snapshot and (delta.base, delta.version) == (1, 3)
        assert delta.revoked == ["r-002"] and [c[0] for c in delta.upserts] == ["r-004"]
        snapshot = creds.changes_since(session, "ly", 0)
        assert snapshot.snapshot and snapshot.secret is not None
        assert sorted(c[0] for c in snapshot.upserts) == ["r-001", "r-003", "r-004"]
        too_many = creds.changes_since(session, "ly", 1, max_delta=1)
        assert too_many.snapshot
        ahead = creds.changes_since(session, "ly", 9)  # gateway ahead of a restored database
        assert ahead.snapshot
        assert creds.gateways_of(session, "ly") == ["gw-01", "gw-02"]
        assert creds.community_of_gateway(session, "gw-02") == "ly"


def test_a_community_must_exist(factory: sessionmaker[Session]) -> None:
    with factory.begin() as session, pytest.raises(LookupError, match="no community"):
        creds.upsert(session, "nowhere", creds.parse_csv(CSV))


def test_cli_import_refuses_then_imports(tmp_path: Path) -> None:
    config = tmp_path / "server.yaml"
    config.write_text(f'database: {{url: "sqlite:///{tmp_path / "s.db"}"}}\n')
    registry = tmp_path / "registry.yaml"
    registry.write_text(REGISTRY_YAML)
    cli = [sys.executable, "-m", "gridsense_server.cli", "--log-level", "WARNING"]
    loaded = subprocess.run([*cli, "load-registry", "--config", str(config), str(registry)],
                            capture_output=True, text=True, timeout=60)
    assert loaded.returncode == 0, loaded.stderr
    csv_file = tmp_path / "residents.csv"
    csv_file.write_text("id,holder,card,doors\nr-1,A,100200,d1\nr-2,B,12x4,d1\n")
    args = [*cli, "credentials", "import", "--config", str(config), "--community", "ly",
            "--csv", str(csv_file), "--json"]
    refused = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and f"{csv_file}: line 3: card" in refused.stderr
    assert "12x4" not in refused.stderr
    csv_file.write_text(csv_file.read_text().replace("12x4", "300400"))
    done = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"community": "ly", "imported": 2, "version": 1}


def test_a_large_community_goes_in_parts_each_within_the_payload_limit(
    factory: sessionmaker[Session],
) -> None:
    items = [creds.CredentialInput(id=f"r-{i:05d}", holder=f"Resident {i}", card=str(10**7 + i),
                                   pin=str(1000 + i % 9000), doors=["b1-main", "b1-back"],
                                   buildings=["b1"]) for i in range(10_000)]
    with factory.begin() as session:
        creds.upsert(session, "ly", items)
    with factory.begin() as session:
        creds.revoke(session, "r-00007")
    with factory() as session:
        snapshot = creds.changes_since(session, "ly", 0)
        delta = creds.changes_since(session, "ly", 1)
    parts = split(snapshot)
    assert len(parts) > 1
    for index, args in enumerate(parts):
        assert (args["part"], args["parts"], args["version"]) == (index, len(parts), 2)
        payload = encode(Command(gateway="gw-01", seq=index, ts=utc_now(), name="access_sync",
                                 args=args))
        assert len(payload) <= MAX_PAYLOAD_BYTES
    ids = [c[0] for args in parts for c in args["credentials"]]
    assert len(ids) == len(set(ids)) == 9_999 and "r-00007" not in ids
    assert split(snapshot) == parts  # deterministic: a lost part can be rebuilt alone
    single = split(delta)
    assert len(single) == 1 and "part" not in single[0]
    assert single[0]["revoked"] == ["r-00007"] and single[0]["base"] == 1


def test_confirmed_versions_survive_a_restart(db_url: str, factory: sessionmaker[Session],
                                              ) -> None:
    sync = CredentialSync(factory, Counters(), Publications())
    assert sync.confirmed("gw-01") == 0
    sync._confirm("gw-01", 7)
    sync._confirm("gw-01", 9)
    engine = make_engine(db_url)  # a fresh process's view: nothing kept in memory
    try:
        again = CredentialSync(make_session_factory(engine), Counters(), Publications())
        assert again.confirmed("gw-01") == 9
        with again.factory() as session:
            row = session.get(GatewayCredentials, "gw-01")
            assert row is not None and row.community_id == "ly"
    finally:
        engine.dispose()


def test_credential_management_is_scoped_by_the_callers_communities(
    factory: sessionmaker[Session],
) -> None:
    with factory.begin() as session:
        session.add(Community(id="zz", name="Other", street_id="hx"))
    control = Viewer("control", "control", None)
    leader = Viewer("lead", "leader", frozenset({"g01", "g01-a"}))
    worker = Viewer("worker-g01", "worker", frozenset({"g01", "g01-a"}))
    with factory() as session:
        assert managed_communities(session, control) is None
        assert managed_communities(session, leader) == {"ly"}
        assert managed_communities(session, worker) == frozenset()
        _manager(session, control, "zz")
        _manager(session, leader, "ly")
        with pytest.raises(HTTPException) as refused:
            _manager(session, leader, "zz")
        assert refused.value.status_code == 403
        assert "'zz' is not one of your grids' communities (ly)" in str(refused.value.detail)
        with pytest.raises(HTTPException) as refused:
            _manager(session, worker, "ly")
        assert refused.value.status_code == 403 and "you are worker" in refused.value.detail


def test_after_a_restart_gateways_behind_their_community_are_probed(
    factory: sessionmaker[Session],
) -> None:
    """What was pushed before a restart is not in memory, and a gateway's answer may have been
    lost while the server was down: the first look at the versions probes whoever is behind."""
    sync = CredentialSync(factory, Counters(), Publications())
    with factory() as session:
        gateways = creds.gateways_of(session, "ly")
    assert len(gateways) >= 2
    sync._confirm(gateways[0], 5)  # up to date
    sync._confirm(gateways[1], 3)  # behind; any other gateway never confirmed anything
    sync._find_lagging({"ly": 5})
    assert gateways[0] not in sync._pushed
    assert all(sync._pushed[g][:2] == ("ly", 5) for g in gateways[1:])


async def test_a_result_from_ingest_confirms_and_a_gateway_asking_gets_what_it_misses(
    factory: sessionmaker[Session],
) -> None:
    """Results reach the sync from ingest (decoded, stored), not through a client of its own."""
    with factory.begin() as session:
        creds.upsert(session, "ly", creds.parse_csv(CSV))
        gateway = creds.gateways_of(session, "ly")[0]
    publications = Publications()
    sync = CredentialSync(factory, Counters(), publications)
    await sync.start()
    try:
        def answer(version: int, **result: object) -> CommandResult:
            return CommandResult(gateway=gateway, seq=version + 1, ts=utc_now(),
                                 id=new_event_id(), command_id=new_event_id(), ok=True,
                                 result={"credentials_version": version, **result})

        sync.result_received(answer(0, sync="needed"))
        await async_wait_until(lambda: len(publications.sent) >= 2, 10, "the push")
        (command_topic, command, _), (config_topic, _, retained) = publications.sent
        assert command_topic == topic_for(gateway, Kind.CMD)
        assert json.loads(command)["args"]["mode"] == "snapshot"
        assert config_topic == topic_for(gateway, Kind.CONFIG) and retained
        sync.result_received(answer(1))
        await async_wait_until(lambda: sync.confirmed(gateway) == 1, 10, "the confirmation")
        assert len(publications.sent) == 2  # confirmed: nothing more to send
    finally:
        await sync.stop()
