"""Escalation under a controllable clock, on SQLite and PostgreSQL: steps on schedule, stop on
accept, reminder and un-accept when the handler goes quiet, night rosters, and idempotence
(a step run twice, or by two schedulers at once, pages nobody twice)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from lifecycle_support import FAST, Clock, database, open_incident
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from gridsense_server.config import LifecycleConfig
from gridsense_server.counters import Counters
from gridsense_server.db.models import Incident, Notification
from gridsense_server.escalation.recipients import recipients
from gridsense_server.escalation.scheduler import EscalationScheduler
from gridsense_server.notify.links import LinkSigner
from gridsense_server.registry.viewers import Viewer, load_viewer
from gridsense_server.workorders.transitions import act, history

CONFIG = LifecycleConfig.model_validate(FAST)
LINKS = LinkSigner(b"0123456789abcdef0123", "http://gridsense.test", 3600)
WORKER = Viewer("worker-g01", "worker", frozenset({"g01", "g01-a"}))


@pytest.fixture
def factory(db_url: str) -> Iterator[sessionmaker[Session]]:
    yield from database(db_url)


def _scheduler(factory: sessionmaker[Session], clock: Clock) -> EscalationScheduler:
    return EscalationScheduler(factory, CONFIG, LINKS, Counters(), clock=clock)


def _paged(factory: sessionmaker[Session], incident_id: str) -> list[tuple[str, str]]:
    with factory() as session:
        return [(r.recipient, r.step.partition("@")[0]) for r in session.scalars(
            select(Notification).where(Notification.incident_id == incident_id)
            .order_by(Notification.id))]


def test_unaccepted_incident_climbs_the_hierarchy_and_stops_on_accept(
    factory: sessionmaker[Session],
) -> None:
    clock = Clock()
    incident_id = open_incident(factory, CONFIG, clock=clock)
    scheduler = _scheduler(factory, clock)
    scheduler.run_due()
    scheduler.run_due()  # nothing due twice
    assert _paged(factory, incident_id) == [("worker-g01", "page.0")]
    clock.advance(29)
    assert scheduler.run_due() == []
    clock.advance(2)
    assert len(scheduler.run_due()) == 1
    assert _paged(factory, incident_id)[-1] == ("leader-g01", "page.1")
    with factory() as session:
        incident = session.get(Incident, incident_id)
        assert incident is not None and incident.level == "community"
        escalations = [h.note for h in history(session, incident_id) if h.action == "escalate"]
    assert len(escalations) == 2 and "leader → leader-g01 [app]" in escalations[1]

    with factory.begin() as session:
        act(session, incident_id, WORKER, "accept", CONFIG, clock.now, note="on my way")
    clock.advance(60)  # the duty officer's step would be due now: accept stopped it
    assert scheduler.run_due() == []
    assert len(_paged(factory, incident_id)) == 2

    clock.advance(60)  # 120 s after accepting with no activity: a reminder to the handler
    scheduler.run_due()
    assert _paged(factory, incident_id)[-1] == ("worker-g01", "remind")
    clock.advance(120)  # still quiet at 240 s: un-accepted and escalated again from the start
    scheduler.run_due()
    scheduler.run_due()  # the next tick pages the first step again
    with factory() as session:
        incident = session.get(Incident, incident_id)
        assert incident is not None and incident.state == "new" and incident.accepted_by is None
        actions = [h.action for h in history(session, incident_id)]
    assert actions == ["open", "escalate", "escalate", "accept", "remind", "unaccept",
                       "escalate"]
    assert _paged(factory, incident_id)[-1][1] == "page.0"


def test_a_progress_note_counts_as_activity(factory: sessionmaker[Session]) -> None:
    clock = Clock()
    incident_id = open_incident(factory, CONFIG, clock=clock)
    scheduler = _scheduler(factory, clock)
    with factory.begin() as session:
        act(session, incident_id, WORKER, "accept", CONFIG, clock.now)
    clock.advance(100)
    with factory.begin() as session:
        act(session, incident_id, WORKER, "note", CONFIG, clock.now, note="valve replaced",
            photos=["upload://valve.jpg"])
    clock.advance(100)  # 200 s after accepting, 100 s after the note: not quiet yet
    scheduler.run_due()
    assert [p for p in _paged(factory, incident_id) if p[1] == "remind"] == []
    clock.advance(30)
    scheduler.run_due()
    assert [p for p in _paged(factory, incident_id) if p[1] == "remind"] == [
        ("worker-g01", "remind")]


def test_night_roster_replaces_the_day_workers(factory: sessionmaker[Session]) -> None:
    zone = ZoneInfo("Asia/Shanghai")
    day = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)  # 11:00 in Shanghai
    night = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)  # 23:00
    early = datetime(2026, 11, 24, 23, 30, tzinfo=UTC)  # 07:30, the night shift wraps midnight
    with factory() as session:
        assert recipients(session, "g01-a", "workers", day, zone) == ["worker-g01"]
        assert recipients(session, "g01-a", "workers", night, zone) == ["night-g01"]
        assert recipients(session, "g01-a", "workers", early, zone) == ["night-g01"]
        assert recipients(session, "g01-a", "leader", night, zone) == ["leader-g01"]
        assert recipients(session, "g02", "duty_officer", day, zone) == ["duty-ly"]
        assert recipients(session, "g01-a", "command_centre", day, zone) == ["centre-hx"]
        # Whoever a roster pages may open and act on what they are paged for.
        night_worker = load_viewer(session, "night-g01")
        assert night_worker is not None and night_worker.sees_grid("g01-a")
        assert not night_worker.sees_grid("g02")


def test_two_schedulers_at_once_page_each_step_once(factory: sessionmaker[Session]) -> None:
    clock = Clock()
    incidents = [open_incident(factory, CONFIG, seq=i, point=point, type=f"t{i}", clock=clock)
                 for i, point in enumerate(["gw-01.boiler", "gw-02.boiler"] * 5)]
    clock.advance(61)  # every step of the policy is due
    schedulers = [_scheduler(factory, clock) for _ in range(2)]
    errors: list[BaseException] = []

    def drain(scheduler: EscalationScheduler) -> None:
        try:
            for _ in range(4):
                scheduler.run_due()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=drain, args=(s,)) for s in schedulers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    with factory() as session:
        for incident_id in incidents:
            keys = [(r.step, r.loop, r.recipient, r.channel) for r in session.scalars(
                select(Notification).where(Notification.incident_id == incident_id))]
            assert len(keys) == len(set(keys))
            escalations = [h for h in history(session, incident_id) if h.action == "escalate"]
            assert len(escalations) == 3


def test_a_step_that_fails_does_not_hold_back_the_others_due_with_it(
    factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Steps run a few per transaction; one that raises is retried alone, the rest go out,
    and it stays pending for the next tick."""
    clock = Clock()
    ids = [open_incident(factory, CONFIG, seq=n, type=f"kind_{n}", clock=clock)
           for n in range(1, 4)]
    scheduler = _scheduler(factory, clock)
    real = scheduler._perform

    def perform(session: Session, incident: Incident, *args: object) -> int:
        if incident.id == ids[1]:
            raise RuntimeError("a channel row that cannot be written")
        return real(session, incident, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(scheduler, "_perform", perform)
    scheduler.run_due()
    assert [bool(_paged(factory, i)) for i in ids] == [True, False, True]
    assert scheduler.counters.get("escalation.errors") == 1
    assert scheduler.counters.get("escalation.page") == 2
    monkeypatch.setattr(scheduler, "_perform", real)
    scheduler.run_due()
    assert _paged(factory, ids[1]) == [("worker-g01", "page.0")]
