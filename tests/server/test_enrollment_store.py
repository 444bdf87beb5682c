"""The enrollment store on SQLite and PostgreSQL: codes are hashed at rest, claimed once even
by many at the same moment, expire by the store's clock, are voided by a newer code and by a
revocation, and a failed issue gives the code back."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from gridsense_server.db.enrollment_models import EnrollmentCode, RevokedCertificate
from gridsense_server.enrollment import EnrollmentStore, RefusalKind, Refused, format_code
from gridsense_server.enrollment.codes import ALPHABET, LENGTH, normalize

TTL_S = 3600.0


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def made(factory: sessionmaker[Session], clock: Clock, gateway: str = "gw-07"
         ) -> tuple[EnrollmentStore, str]:
    store = EnrollmentStore(factory, TTL_S, clock)
    with factory.begin() as session:
        issued = store.create(session, gateway, "ly", "泵房", None, "control")
    return store, issued.code


def refusal(store: EnrollmentStore, code: str) -> RefusalKind:
    with pytest.raises(Refused) as refused:
        store.claim(code)
    return refused.value.kind


def test_codes_read_well_and_are_stored_hashed(migrated_factory: sessionmaker[Session]) -> None:
    store, code = made(migrated_factory, Clock())
    assert len(code) == LENGTH and set(code) <= set(ALPHABET)
    shown = format_code(code)
    assert shown[5] == "-" and normalize(f" {shown.lower()} ") == code
    assert normalize("ABCDE-FGHI0") is None  # 0, I: not in the alphabet, never looked up
    with migrated_factory() as session:
        stored = session.scalars(select(EnrollmentCode.code_hash)).all()
    assert len(stored) == 1 and code not in stored[0] and len(stored[0]) == 64
    assert store.claim(shown.lower()) == "gw-07"


def test_one_claim_wins_among_many_at_once(migrated_factory: sessionmaker[Session]) -> None:
    store, code = made(migrated_factory, Clock())
    outcomes: list[str] = []
    start = threading.Barrier(8)

    def claim() -> None:
        start.wait()
        try:
            outcomes.append(store.claim(code))
        except Refused as refused:
            outcomes.append(refused.kind.value)

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes) == ["gw-07"] + ["used"] * 7


def test_expiry_newer_codes_revocation_and_release(
    migrated_factory: sessionmaker[Session]
) -> None:
    clock = Clock()
    store, first = made(migrated_factory, clock)
    clock.now += timedelta(seconds=TTL_S + 1)
    assert refusal(store, first) is RefusalKind.EXPIRED
    assert refusal(store, "ABCDE-FGHJK") is RefusalKind.WRONG

    with migrated_factory.begin() as session:
        second = store.issue(session, "gw-07").code
        third = store.issue(session, "gw-07").code
    assert refusal(store, second) is RefusalKind.INVALIDATED
    assert store.claim(third) == "gw-07"
    store.release(third)  # the broker was down: the installer may try again
    assert store.claim(third) == "gw-07"
    with migrated_factory.begin() as session:
        store.enrolled(session, "gw-07", "abc123")
        fourth = store.issue(session, "gw-07").code
        assert store.revoke(session, "gw-07") == "abc123"
    assert refusal(store, fourth) is RefusalKind.INVALIDATED
    with migrated_factory() as session:
        assert session.scalars(select(RevokedCertificate.serial)).all() == ["abc123"]
