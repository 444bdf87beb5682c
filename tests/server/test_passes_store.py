"""Electronic passes on SQLite and PostgreSQL, below the HTTP layer: keys and their rotation,
pass records and revocations in the credential sync (snapshot, delta, parts), one-minute
tokens that verify with the deployment's public key, visitors for the resident's own building,
one-time codes and resident sessions, and the reconciliation of use counts across gateways."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from server_helpers import REGISTRY_YAML, async_wait_until
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from test_access_credentials import Publications

from gridsense_protocol import Command, CommandResult, new_event_id, passes, utc_now
from gridsense_protocol.passes import PassError
from gridsense_server.access_control import credentials as creds
from gridsense_server.access_control.parts import split
from gridsense_server.access_control.sync import CredentialSync
from gridsense_server.config import LifecycleConfig
from gridsense_server.counters import Counters
from gridsense_server.db import make_engine, make_session_factory, upgrade
from gridsense_server.db.access_models import AccessLogEntry
from gridsense_server.db.models import Incident
from gridsense_server.db.pass_models import AccessPass
from gridsense_server.passes import keys, overuse, records, residents
from gridsense_server.registry.registry_file import parse_registry
from gridsense_server.registry.store import apply_registry
from gridsense_server.secure_files import InsecureFileError

CSV = """id,holder,card,pin,valid_from,valid_until,doors,buildings
r-101,张伟,00100200,,,,,b1
r-102,李娜,,4711,,,,b2
"""


@pytest.fixture
def factory(db_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(db_url)
    upgrade(engine)
    made = make_session_factory(engine)
    apply_registry(made, parse_registry(REGISTRY_YAML))
    with made.begin() as session:
        creds.upsert(session, "ly", creds.parse_csv(CSV))
    yield made
    engine.dispose()


def _visitor(**overrides: object) -> records.VisitorRequest:
    now = utc_now()
    fields: dict[str, object] = {"name": "王五", "phone": "13800000000", "not_before": now,
                                 "not_after": now + timedelta(hours=4), "uses": 1,
                                 "buildings": ["b1"], "doors": []}
    fields.update(overrides)
    return records.VisitorRequest(**fields)  # type: ignore[arg-type]


def test_keys_rotate_and_ride_in_every_snapshot_and_delta(
    factory: sessionmaker[Session], tmp_path: Path,
) -> None:
    key_dir = tmp_path / "pass-keys"
    with factory.begin() as session:
        first = keys.add_signing_key(session, key_dir)
        cred = records.credential(session, "r-101")
        row, token = records.add_visitor(session, cred, _visitor(), "resident:r-101",
                                         own_building_only=True)
        version_after_invite = creds.site(session, "ly").version
    assert (key_dir / f"{first}.key").stat().st_mode & 0o077 == 0
    with factory() as session:
        snapshot = records.with_passes(session, creds.changes_since(session, "ly", 0))
        delta = records.with_passes(session, creds.changes_since(session, "ly", 1))
    args = split(snapshot)[0]
    assert args["mode"] == "snapshot"
    assert list(args["pass_keys"]["public"]) == [str(first)]
    assert len(args["pass_keys"]["site"]["0"]) == 64
    assert args["passes"] == [[row.pass_id, "visitor", "r-101", int(row.not_before.timestamp()),
                               int(row.not_after.timestamp()), 1, [], ["b1"]]]
    assert "revoked_passes" not in args
    assert split(delta)[0]["passes"][0][0] == row.pass_id
    with factory.begin() as session:
        second = keys.add_signing_key(session, key_dir)
        assert creds.site(session, "ly").version == version_after_invite + 1
        keys.retire_signing_key(session, first)
        records.revoke(session, session.get(AccessPass, row.pass_id), "staff:control")
        after = creds.site(session, "ly").version
    with factory() as session:
        delta = records.with_passes(session, creds.changes_since(session, "ly",
                                                                 version_after_invite))
        assert delta.version == after
        args = split(delta)[0]
        assert list(args["pass_keys"]["public"]) == [str(second)]
        assert args["revoked_passes"] == [row.pass_id] and "passes" not in args
        snapshot_args = split(records.with_passes(
            session, creds.changes_since(session, "ly", 0)))[0]
        assert snapshot_args["revoked_passes"] == [row.pass_id]
        # The signing key file must stay private, like the CA's key.
        (key_dir / f"{second}.key").chmod(0o644)
        with pytest.raises(InsecureFileError):
            keys.signing_key(session, key_dir)
    assert token and records.link_hash(token) != token


def test_pass_records_split_across_parts_with_keys_in_part_zero(
    factory: sessionmaker[Session], tmp_path: Path,
) -> None:
    with factory.begin() as session:
        keys.add_signing_key(session, tmp_path)
        cred = records.credential(session, "r-101")
        for index in range(30):
            records.add_visitor(session, cred, _visitor(name=f"访客{index}"), "resident:r-101",
                                own_building_only=True)
    with factory() as session:
        changes = records.with_passes(session, creds.changes_since(session, "ly", 0))
    parts = split(changes, budget=600)
    assert len(parts) > 2 and all(p["parts"] == len(parts) for p in parts)
    assert "pass_keys" in parts[0] and not any("pass_keys" in p for p in parts[1:])
    carried = [p[0] for part in parts for p in part.get("passes", [])]
    assert sorted(carried) == sorted(p[0] for p in changes.passes) and len(carried) == 30


def test_resident_tokens_are_a_day_of_minutes_that_verify_offline(
    factory: sessionmaker[Session], tmp_path: Path,
) -> None:
    with factory.begin() as session:
        key_id = keys.add_signing_key(session, tmp_path)
        cred = records.credential(session, "r-101")
        row, made = records.resident_pass(session, cred)
        again, made_again = records.resident_pass(session, cred)
        assert made and not made_again and again.pass_id == row.pass_id
        now = utc_now()
        windows = records.minute_windows(row, now)
        form, texts = records.qr_texts(session, row, tmp_path, windows)
        public = keys.public_keys(session)
        site_id, site_key = keys.site_key(session, "ly")
        keys.pass_site(session, "ly").compact = True
        compact_form, compact = records.qr_texts(session, row, tmp_path, windows[:3])
    assert form == passes.SIGNED and len(texts) == records.TOKENS_PER_DAY
    first = passes.verify(texts[0], public_keys=public, site_keys={})
    assert (first.pass_id, first.holder, first.kind, first.key_id) == (
        row.pass_id, "r-101", "resident", key_id)
    assert first.not_after - first.not_before <= records.TOKEN_S
    assert first.not_before <= int(now.timestamp()) < first.not_after
    last = passes.verify(texts[-1], public_keys=public, site_keys={})
    minute = int(now.timestamp()) // 60 * 60  # a pass made now starts mid-minute
    assert last.not_before - minute == (records.TOKENS_PER_DAY - 1) * records.TOKEN_S
    assert compact_form == passes.COMPACT and len(compact[0]) == passes.COMPACT_TEXT_LENGTH
    read = passes.verify(compact[1], public_keys={}, site_keys={site_id: site_key})
    assert read.pass_id == row.pass_id and read.not_before == windows[1][0]
    with pytest.raises(PassError) as wrong:
        passes.verify(texts[0], public_keys={key_id: bytes(32)}, site_keys={})
    assert wrong.value.reason in ("forged", "malformed")


@pytest.mark.parametrize(("request_fields", "problem"), [
    ({"buildings": ["b2"]}, "own building"),
    ({"buildings": []}, "own building"),
    ({"doors": ["b2-main"]}, "own building"),
    ({"uses": 0}, "uses must be"),
    ({"not_after": utc_now() - timedelta(minutes=1)}, "must end after"),
    ({"not_after": utc_now() + timedelta(days=40)}, "at most 31 days"),
])
def test_a_resident_invites_only_to_their_own_building(
    factory: sessionmaker[Session], request_fields: dict[str, object], problem: str,
) -> None:
    with factory.begin() as session:
        cred = records.credential(session, "r-101")
        with pytest.raises(records.PassRefused) as refused:
            records.add_visitor(session, cred, _visitor(**request_fields), "resident:r-101",
                                own_building_only=True)
    assert problem in str(refused.value)
    assert str(refused.value).split(" / ")[0] != str(refused.value)  # Chinese first, then English


def test_codes_work_once_and_a_revoked_credential_ends_its_sessions(
    factory: sessionmaker[Session],
) -> None:
    with factory.begin() as session:
        code, expires = residents.issue_code(session, "r-101", "staff:control")
    assert len(code) == 11 and code[5] == "-" and expires > utc_now()
    with factory.begin() as session:
        assert residents.redeem(session, "WRONG-CODE1") is None
        assert residents.redeem(session, code.lower().replace("-", " ")) == "r-101"
    with factory.begin() as session:
        assert residents.redeem(session, code) is None  # used up
        session_id = residents.open_session(session, "r-101")
    with factory() as session:
        found = residents.check(session, session_id)
        assert found is not None and found.credential_id == "r-101"
        assert residents.check(session, session_id + "x") is None
    with factory.begin() as session:
        creds.revoke(session, "r-101")
    with factory.begin() as session:
        assert residents.check(session, session_id) is None
        with pytest.raises(LookupError):
            residents.issue_code(session, "r-101", "staff:control")


def test_overuse_across_gateways_opens_one_incident_once(
    factory: sessionmaker[Session], tmp_path: Path,
) -> None:
    with factory.begin() as session:
        keys.add_signing_key(session, tmp_path)
        row, _ = records.add_visitor(session, records.credential(session, "r-101"),
                                     _visitor(uses=1), "resident:r-101",
                                     own_building_only=True)
        pass_id = row.pass_id
    now = utc_now()
    for index, (gateway, result) in enumerate([("gw-01", "granted"), ("gw-01", "denied"),
                                               ("gw-02", "granted")]):
        with factory.begin() as session:
            assert not overuse.find(session) or index == 2
            session.add(AccessLogEntry(
                event_id=new_event_id(), gateway=gateway, seq=index + 1,
                ts=now + timedelta(seconds=index), point_id=f"{gateway}.boiler",
                grid_id="g01-a", door="b1-main", result=result, method="pass",
                credential_id="r-101", card_hash=None, reason=None, offline=True,
                backfill=False, credentials_version=1, pass_id=pass_id, received_at=now))
    with factory.begin() as session:
        found = overuse.find(session)
        assert [(f.pass_id, f.uses, f.granted, f.gateways) for f in found] == [
            (pass_id, 1, 2, 2)]
        incident = overuse.open_incident(session, found[0], LifecycleConfig())
        assert incident is not None
    with factory.begin() as session:
        assert overuse.find(session) == []
        opened = list(session.scalars(select(Incident).where(
            Incident.type == overuse.PASS_OVERUSE)))
        assert len(opened) == 1 and opened[0].message.startswith("通行证超次使用：访客 王五")
        assert opened[0].point_id == "gw-02.boiler" and opened[0].accept_due_at is not None


async def test_the_running_sync_pushes_a_revocation_as_a_delta(
    factory: sessionmaker[Session], tmp_path: Path,
) -> None:
    with factory.begin() as session:
        keys.add_signing_key(session, tmp_path)
        row, _ = records.add_visitor(session, records.credential(session, "r-101"), _visitor(),
                                     "resident:r-101", own_building_only=True)
        version = creds.site(session, "ly").version
    publications = Publications()
    sync = CredentialSync(factory, Counters(), publications)
    sync.extend = records.with_passes
    await sync.start()
    try:
        def answer(confirmed: int) -> CommandResult:
            return CommandResult(gateway="gw-01", seq=confirmed + 1, ts=utc_now(),
                                 id=new_event_id(), command_id=new_event_id(), ok=True,
                                 result={"credentials_version": confirmed})

        sync.result_received(answer(version))
        await async_wait_until(lambda: sync.confirmed("gw-01") == version, 10, "confirmed")
        with factory.begin() as session:
            records.revoke(session, session.get(AccessPass, row.pass_id), "staff:control")
        sync.changed("ly")
        await async_wait_until(lambda: any("/cmd" in t for t, _, _ in publications.sent), 10,
                               "the delta")
        command = Command.model_validate(json.loads(
            next(p for t, p, _ in publications.sent if "/cmd" in t)))
        assert command.args["mode"] == "delta" and command.args["base"] == version
        assert command.args["revoked_passes"] == [row.pass_id]
        assert set(command.args["pass_keys"]) == {"public", "site"}
    finally:
        await sync.stop()


def test_cli_rotates_keys_and_prints_a_residents_code(tmp_path: Path) -> None:
    config = tmp_path / "server.yaml"
    config.write_text(f'database: {{url: "sqlite:///{tmp_path / "s.db"}"}}\n')
    registry = tmp_path / "registry.yaml"
    registry.write_text(REGISTRY_YAML)
    (tmp_path / "residents.csv").write_text(CSV)
    cli = [sys.executable, "-m", "gridsense_server.cli", "--log-level", "WARNING"]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*cli, *args[:2], "--config", str(config), *args[2:]],
                              capture_output=True, text=True, timeout=60)

    assert run("load-registry", str(registry)).returncode == 0
    assert run("credentials", "import", "--community", "ly", "--csv",
               str(tmp_path / "residents.csv")).returncode == 0
    first = run("passes", "rotate-key", "--json")
    second = run("passes", "rotate-key", "--json")
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    ids = [json.loads(r.stdout)["key_id"] for r in (first, second)]
    assert ids == [0, 1]
    assert (tmp_path / "state" / "pass-keys" / "1.key").stat().st_mode & 0o077 == 0
    assert run("passes", "retire-key", "0").returncode == 0
    listed = json.loads(run("passes", "keys", "--json").stdout)["keys"]
    assert [(k["key_id"], k["retired_at"] is not None) for k in listed] == [(0, True), (1, False)]
    code = run("passes", "code", "--credential", "r-101")
    assert code.returncode == 0 and code.stdout.startswith("登录码 / sign-in code: ")
    assert "/#/r" in code.stdout
    unknown = run("passes", "code", "--credential", "nobody")
    assert unknown.returncode == 2 and "nobody" in unknown.stderr
