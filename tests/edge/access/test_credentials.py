"""The local credential copy: hashing, decisions, versioned snapshots and deltas, the cap."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from gridsense_edge.drivers.osdp.credentials import (
    Credential,
    CredentialError,
    CredentialStore,
    StoreFull,
    card_hash,
    pin_hash,
)
from gridsense_edge.drivers.osdp.decisions import decide

KEY = bytes(range(32))


def cred(ident: str, card: str | None = None, pin: str | None = None, **kw: object) -> Credential:
    return Credential.from_wire({
        "id": ident, "card": card_hash(KEY, card) if card else None,
        "pin": pin_hash(KEY, pin) if pin else None, "doors": kw.get("doors", ["b3-east"]),
        "buildings": kw.get("buildings", []), "valid_from": kw.get("valid_from"),
        "valid_until": kw.get("valid_until"),
    })


@pytest.fixture
def store(tmp_path: Path) -> CredentialStore:
    s = CredentialStore(tmp_path, max_credentials=10)
    s.apply_snapshot(3, KEY, [
        cred("alice", card="100200"), cred("bob", pin="4711"),
        cred("carol", card="300400", valid_until=1000.0),
        cred("dave", card="500600", valid_from=5000.0),
        cred("erin", card="700800", doors=[], buildings=["b3"]),
    ])
    return s


def test_the_file_holds_no_card_number_and_only_the_agent_reads_it(
    store: CredentialStore, tmp_path: Path
) -> None:
    assert stat.S_IMODE((tmp_path / "access.db").stat().st_mode) == 0o600
    store.close()
    raw = (tmp_path / "access.db").read_bytes()
    assert b"100200" not in raw and b"4711" not in raw


@pytest.mark.parametrize(("kwargs", "granted", "reason"), [
    ({"card": "100200"}, True, None),
    ({"card": "000100200"}, True, None),  # leading zeros of a reader's format do not matter
    ({"pin": "4711"}, True, None),
    ({"pin": "4712"}, False, "unknown"),
    ({"card": "999"}, False, "unknown"),
    ({"card": "300400"}, False, "expired"),
    ({"card": "500600"}, False, "not_yet_valid"),
    ({"card": "700800"}, True, None),  # by building
])
def test_decisions(store: CredentialStore, kwargs: dict[str, str], granted: bool,
                   reason: str | None) -> None:
    decision = decide(store, door="b3-east", building="b3", now=2000.0, **kwargs)
    assert (decision.granted, decision.reason) == (granted, reason)
    assert decision.hashed is not None and decision.hashed not in kwargs.values()


def test_door_not_allowed(store: CredentialStore) -> None:
    decision = decide(store, door="b9-west", building="b9", now=2000.0, card="100200")
    assert (decision.granted, decision.reason) == (False, "door_not_allowed")


def test_delta_revokes_and_upserts_in_order(store: CredentialStore) -> None:
    assert store.apply_delta(3, 4, [cred("frank", card="111")], ["alice"])
    assert store.version == 4
    assert decide(store, door="b3-east", building=None, now=1.0, card="100200").reason == "revoked"
    assert decide(store, door="b3-east", building=None, now=1.0, card="111").granted
    assert not store.apply_delta(7, 8, [], ["bob"])  # gap: the caller asks for a snapshot
    assert store.version == 4
    assert store.apply_delta(3, 4, [], ["bob"])  # already applied: no-op
    assert decide(store, door="b3-east", building=None, now=1.0, pin="4711").granted


def test_cap_refuses_and_keeps_the_previous_copy(store: CredentialStore) -> None:
    with pytest.raises(StoreFull):
        store.apply_delta(3, 4, [cred(f"x{i}", card=str(i)) for i in range(10)], [])
    assert store.version == 3 and store.count() == 5


def test_never_synced_denies_everything(tmp_path: Path) -> None:
    empty = CredentialStore(tmp_path / "new")
    decision = decide(empty, door="d", building=None, now=0.0, card="1")
    assert (decision.granted, decision.reason) == (False, "no_credentials")


def test_a_credential_without_card_or_pin_is_refused() -> None:
    with pytest.raises(CredentialError, match="neither card nor pin"):
        Credential.from_wire({"id": "zed"})
