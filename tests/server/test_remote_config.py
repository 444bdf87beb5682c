"""Remote configuration on the server, on real SQLite and PostgreSQL: versions are validated
with the gateway's schema, numbered, audited and compared; what gateways report is kept once;
a bulk change path reaches exactly what it names."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from gridsense_protocol.gateway_config import config_hash
from gridsense_server.db.web_models import AuditEntry
from gridsense_server.remote_config import versions
from gridsense_server.remote_config.bulk import PathError, set_value, split_change
from gridsense_server.remote_config.validate import InvalidConfig, check

DOCUMENT: dict[str, Any] = {
    "gateway": {"id": "gw-01", "state_dir": "/var/lib/gridsense"},
    "buses": [{"id": "rs485-0", "port": "/dev/ttyUSB0"}],
    "devices": [{"type": "modbus_temperature", "point": "gw-01.boiler", "bus": "rs485-0",
                 "slave": 1, "profile": "xy-md02"}],
    "rules": [{"type": "over_temperature", "points": ["*"], "threshold": 60},
              {"type": "rapid_rise", "points": ["*"], "rate_per_min": 5}],
}


def test_the_gateway_schema_names_each_wrong_key() -> None:
    check("gw-01", DOCUMENT)
    bad = copy.deepcopy(DOCUMENT)
    bad["rules"][0]["threshold"] = "hot"
    bad["devices"][0]["slave"] = "one"
    bad["devices"].append({"type": "thermometer", "point": "x"})
    bad["gateway"]["id"] = "gw-02"
    bad["surprise"] = 1
    with pytest.raises(InvalidConfig) as refused:
        check("gw-01", bad)
    problems = refused.value.problems
    assert any(p.startswith("rules[0].threshold:") for p in problems), problems
    assert any(p.startswith("devices[0].slave:") for p in problems), problems
    assert "devices[1]: `type` is missing or not a known type" in problems
    assert any(p.startswith("gateway.id:") and "gw-02" in p for p in problems), problems
    assert any("surprise" in p for p in problems), problems
    with pytest.raises(InvalidConfig):
        check("gw-01", ["not", "a", "mapping"])
    nul = copy.deepcopy(DOCUMENT)
    nul["devices"][0]["point"] = "gw-01.boiler\u0000"
    with pytest.raises(InvalidConfig, match="NUL"):  # the config message could not carry it
        check("gw-01", nul)


def test_versions_are_numbered_audited_and_compared(
        migrated_factory: sessionmaker[Session]) -> None:
    with migrated_factory.begin() as session:
        first = versions.create_version(session, "gw-01", DOCUMENT, "control", "初始 / first")
        assert (first.version, first.hash) == (1, config_hash(DOCUMENT))
    raised = set_value(DOCUMENT, "rules[type=over_temperature].threshold", 70)
    with migrated_factory.begin() as session, pytest.raises(versions.Unchanged):
        versions.create_version(session, "gw-01", DOCUMENT, "control", "again")
    with migrated_factory.begin() as session:
        second = versions.create_version(session, "gw-01", raised, "control", "更高 / higher",
                                         "10.0.0.9")
        assert second.version == 2
    with migrated_factory.begin() as session, pytest.raises(InvalidConfig):
        versions.create_version(session, "gw-01", {"gateway": {}}, "control", "broken")
    with migrated_factory() as session:
        status = versions.status(session, "gw-01")
        assert (status.desired_version, status.pushed_version, status.in_sync) == (2, 0, False)
        kept, applies = versions.history(session, "gw-01")
        assert [(v.version, v.author, v.reason) for v in kept] == [
            (2, "control", "更高 / higher"), (1, "control", "初始 / first")]
        assert applies == []
        audit = session.scalars(select(AuditEntry).where(AuditEntry.action == "config.version")
                                .order_by(AuditEntry.id)).all()
        assert [a.target for a in audit] == ["gw-01", "gw-01"]
        assert "threshold: 70" in audit[1].detail and audit[1].address == "10.0.0.9"
        diff = versions.diff(versions.get_version(session, "gw-01", 1).document,
                             versions.get_version(session, "gw-01", 2).document, "v1", "v2")
    assert "-  threshold: 60" in diff and "+  threshold: 70" in diff
    assert not any("rapid_rise" in line and line[:1] in "+-" for line in diff)


def test_each_reported_outcome_is_kept_once_and_moves_running(
        migrated_factory: sessionmaker[Session]) -> None:
    with migrated_factory.begin() as session:
        row = versions.create_version(session, "gw-01", DOCUMENT, "control", "first")
        digest = row.hash
    report = {"version": 1, "hash": digest, "state": "applied", "running_version": 1,
              "running_hash": digest, "reason": None}
    with migrated_factory.begin() as session:
        assert versions.record_apply(session, "gw-01", "01J0000000000000000000000A", report)
    with migrated_factory.begin() as session:  # the same event again (a replay): once
        assert versions.record_apply(session, "gw-01", "01J0000000000000000000000A",
                                     report) is None
        assert versions.record_apply(session, "gw-01", "01J0000000000000000000000B",
                                     {"state": "exploded"}) is None
    with migrated_factory() as session:
        status = versions.status(session, "gw-01")
        assert (status.running_hash, status.last_state, status.in_sync) == (
            digest, "applied", True)
        assert len(versions.history(session, "gw-01")[1]) == 1


def test_a_change_path_reaches_what_it_names_and_nothing_else() -> None:
    changed = set_value(DOCUMENT, "rules[type=over_temperature].threshold", 72)
    assert changed["rules"][0]["threshold"] == 72 and "threshold" not in changed["rules"][1]
    assert DOCUMENT["rules"][0]["threshold"] == 60  # a copy, never the original
    assert set_value(DOCUMENT, "devices[0].slave", 3)["devices"][0]["slave"] == 3
    assert set_value(DOCUMENT, "health.interval_s", 10)["health"] == {"interval_s": 10}
    assert split_change("rules[type=over_temperature].threshold=72") == (
        "rules[type=over_temperature].threshold", "72")
    assert split_change("a.b = x=y") == ("a.b", " x=y")
    with pytest.raises(PathError):
        split_change("rules[type=x].threshold")
    for path in ("rules[type=nothing].threshold", "devices[5].slave", "rules[0]", "a..b["):
        with pytest.raises(PathError):
            set_value(DOCUMENT, path, 1)
