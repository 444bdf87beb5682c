"""Decisions on electronic passes from the local copy: every reason of the protocol, in order,
for both forms; uses counted only on a grant."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from pass_support import KEY_ID, T0, compact, forged, make_pass, pass_keys, record, signed

from gridsense_edge.drivers.osdp.credentials import Credential, CredentialStore
from gridsense_edge.drivers.osdp.passbook import PassRecord, PassUpdate, parse_keys
from gridsense_edge.drivers.osdp.passdecide import PassContext, decide_pass
from gridsense_protocol.passes import Pass

KEY = bytes(range(32))
NOW = T0 + 600.0


def at(door: str = "b3-east", now: float = NOW, clock: bool = True,
       building: str | None = "b3") -> PassContext:
    return PassContext(door=door, building=building, now=now, clock_trusted=clock, skew_s=60)


def holder(ident: str, doors: tuple[str, ...] = ("b3-east",), revoked: bool = False
           ) -> Credential:
    return Credential(ident, "h-" + ident, None, None, None, doors, (), revoked)


@pytest.fixture
def store(tmp_path: Path) -> CredentialStore:
    s = CredentialStore(tmp_path)
    yield s
    s.close()


def sync(store: CredentialStore, *items: Pass, revoked: tuple[str, ...] = (),
         credentials: tuple[Credential, ...] = (holder("alice"),)) -> None:
    update = PassUpdate(parse_keys(pass_keys()), [PassRecord.from_wire(record(i)) for i in items],
                        list(revoked))
    store.apply_snapshot(store.version + 1, KEY, list(credentials), update, now=NOW)


@pytest.mark.parametrize("form", [signed, compact])
def test_a_valid_pass_opens_once_then_is_used_up(store: CredentialStore, form: object) -> None:
    item = make_pass(uses=1)
    sync(store, item)
    text = form(item)  # type: ignore[operator]
    first = decide_pass(store, text, at())
    assert (first.granted, first.reason, first.credential, first.pass_id) == (
        True, None, "alice", item.pass_id)
    assert store.passes.used(item.pass_id) == 1  # on disk before the lock is told
    second = decide_pass(store, text, at())
    assert (second.granted, second.reason) == (False, "used_up")
    assert store.passes.used(item.pass_id) == 1  # a denial counts nothing


def test_reasons_in_order(store: CredentialStore) -> None:
    sync(store)
    cases: list[tuple[str, str, PassContext]] = []
    ok = make_pass(uses=0)
    cases.append(("not a pass at all", "malformed", at()))
    cases.append((signed(make_pass(key_id=9)), "unknown_key", at()))
    cases.append((forged(ok), "forged", at()))
    # forged and unsynchronised: the bytes are judged first
    cases.append((forged(ok), "forged", at(clock=False)))
    cases.append((signed(ok), "clock", at(clock=False)))
    cases.append((signed(make_pass(not_before=int(NOW) + 3600, not_after=int(NOW) + 7200)),
                  "not_yet_valid", at()))
    cases.append((signed(make_pass(not_before=T0 - 7200, not_after=T0 - 3600)), "expired",
                  at()))
    cases.append((compact(make_pass()), "unknown", at()))  # its record never synced
    cases.append((signed(ok), "door_not_allowed", at(door="b5-west", building="b5")))
    for text, reason, context in cases:
        decision = decide_pass(store, text, context)
        assert (decision.granted, decision.reason) == (False, reason), (reason, text[:20])


def test_skew_allowance_and_the_half_open_window(store: CredentialStore) -> None:
    item = make_pass(uses=0, not_before=int(NOW), not_after=int(NOW) + 100)
    sync(store, item)
    text = signed(item)
    assert decide_pass(store, text, at(now=NOW - 59)).granted  # inside the 60 s skew
    assert decide_pass(store, text, at(now=NOW - 61)).reason == "not_yet_valid"
    assert decide_pass(store, text, at(now=NOW + 159)).granted
    assert decide_pass(store, text, at(now=NOW + 160)).reason == "expired"


def test_revoked_pass_and_revoked_holder(store: CredentialStore) -> None:
    gone, visitor = make_pass(uses=0), make_pass(uses=0, holder="bob")
    sync(store, gone, visitor, revoked=(gone.pass_id,),
         credentials=(holder("alice"), holder("bob", revoked=True)))
    assert decide_pass(store, signed(gone), at()).reason == "revoked"
    assert decide_pass(store, compact(gone), at()).reason == "revoked"
    assert decide_pass(store, signed(visitor), at()).reason == "holder_revoked"


def test_a_pass_without_scope_takes_its_holders_doors(store: CredentialStore) -> None:
    own = make_pass(uses=0, doors=(), buildings=())
    stranger = make_pass(uses=0, doors=(), buildings=(), holder="nobody")
    by_building = make_pass(uses=0, doors=(), buildings=("b3",))
    sync(store, own, credentials=(holder("alice", doors=("b3-east", "garage")),))
    assert decide_pass(store, signed(own), at(door="garage")).granted
    assert decide_pass(store, signed(own), at(door="b5-west")).reason == "door_not_allowed"
    assert decide_pass(store, signed(stranger), at()).reason == "door_not_allowed"
    assert decide_pass(store, signed(by_building), at(door="b3-side", building="b3")).granted


def test_the_compact_form_takes_scope_holder_and_limit_from_its_record(
        store: CredentialStore) -> None:
    item = make_pass(uses=2, holder="alice", doors=("garage",))
    sync(store, item, credentials=(holder("alice", doors=("garage",)),))
    text = compact(item)
    assert decide_pass(store, text, at()).reason == "door_not_allowed"
    assert [decide_pass(store, text, at(door="garage")).granted for _ in range(3)] == [
        True, True, False]
    assert KEY_ID in store.passes.site_keys


def test_a_pass_without_a_limit_opens_every_time(store: CredentialStore) -> None:
    """Also prints what a decision costs (benchmarks.md); no timing is asserted."""
    item = make_pass(uses=0)
    sync(store, item)
    text = signed(item)
    started = time.perf_counter()
    for _ in range(50):
        assert decide_pass(store, text, at()).granted
    per_decision_ms = (time.perf_counter() - started) * 1000 / 50
    print(f"signed pass decision: {per_decision_ms:.3f} ms")


def test_a_record_that_shortens_the_window_wins(store: CredentialStore) -> None:
    item = make_pass(uses=0, not_before=T0, not_after=T0 + 3600)
    shortened = record(item)
    shortened[4] = T0 + 300  # the inviter ended the visit early
    store.apply_snapshot(1, KEY, [holder("alice")], PassUpdate(
        parse_keys(pass_keys()), [PassRecord.from_wire(shortened)]), now=NOW)
    for text in (signed(item), compact(item)):
        assert decide_pass(store, text, at(now=T0 + 200)).granted
        assert decide_pass(store, text, at(now=T0 + 600)).reason == "expired"
