"""Credential sync at the gateway: snapshot, deltas in and out of order, refusals, config."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from gridsense_edge.drivers.osdp.credentials import CredentialStore, card_hash
from gridsense_edge.drivers.osdp.decisions import decide
from gridsense_edge.drivers.osdp.sync import AccessSync
from gridsense_protocol import Command, ConfigUpdate

KEY = bytes(range(7, 39))
NOW = datetime(2026, 11, 25, tzinfo=UTC)


def wire(ident: str, card: str) -> list[object]:
    return [ident, card_hash(KEY, card), None, None, None, ["d1"], []]


def cmd(seq: int, **args: object) -> Command:
    return Command(gateway="gw", seq=seq, ts=NOW, name="access_sync", args=args)


def test_snapshot_then_deltas_then_a_gap(tmp_path: Path) -> None:
    store = CredentialStore(tmp_path)
    sync = AccessSync(store)
    reply = sync.handle(cmd(1, mode="snapshot", version=3, secret=KEY.hex(),
                            credentials=[wire("a", "1"), wire("b", "2")]))
    assert reply is not None and reply.ok and reply.result == {"credentials_version": 3}
    assert decide(store, door="d1", building=None, now=0, card="1").granted
    reply = sync.handle(cmd(2, mode="delta", base=3, version=4, credentials=[], revoked=["a"]))
    assert reply is not None and reply.ok
    assert decide(store, door="d1", building=None, now=0, card="1").reason == "revoked"
    # two pushes computed from the same base: the second also applies over version 4
    reply = sync.handle(cmd(3, mode="delta", base=3, version=5,
                            credentials=[wire("c", "3")], revoked=["a"]))
    assert reply is not None and reply.ok and store.version == 5
    reply = sync.handle(cmd(4, mode="delta", base=9, version=10, credentials=[], revoked=["b"]))
    assert reply is not None and not reply.ok and reply.result == {"credentials_version": 5}
    assert decide(store, door="d1", building=None, now=0, card="2").granted  # nothing applied


def test_malformed_sync_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    store = CredentialStore(tmp_path)
    sync = AccessSync(store)
    for bad in (cmd(1, mode="snapshot", version=1, secret="zz", credentials=[]),
                cmd(2, mode="snapshot", version=1, secret=KEY.hex(), credentials=[["x"]]),
                cmd(3, mode="teleport", version=1),
                cmd(4, mode="delta", version=1)):
        reply = sync.handle(bad)
        assert reply is not None and not reply.ok and reply.error, bad
    assert store.version == 0 and sync.counters["refused"] == 4


def test_config_names_the_version_and_a_gateway_behind_says_so(tmp_path: Path) -> None:
    store = CredentialStore(tmp_path)
    sync = AccessSync(store)
    config = ConfigUpdate(gateway="gw", seq=1, ts=NOW, version=2,
                          body={"access": {"community": "ly", "credentials_version": 2}})
    assert sync.wants(config)
    reply = sync.handle(config)
    assert reply is not None and reply.result == {"credentials_version": 0, "sync": "needed"}
    store.apply_snapshot(2, KEY, [])
    assert sync.handle(config) is None  # up to date: nothing to say
