"""Turn edge Incident messages into work orders: one open incident per (point, type).

Every event id is stored once, so a replayed message changes nothing.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from gridsense_protocol import AlarmState, Severity, new_event_id, utc_now
from gridsense_protocol import Incident as IncidentMessage

from ..config import LifecycleConfig
from ..counters import Counters
from ..db.models import FINAL_STATES, Incident, IncidentEvent, Point
from ..db.retry import retry_transient
from ..db.sequences import record_sequences
from ..live.hub import LiveHub
from ..logs import kv
from .noise import SilenceCache, Suppressor
from .transitions import on_opened, on_severity_raised
from .views import IncidentView

log = logging.getLogger(__name__)

_SEVERITY_RANK = {"minor": 0, "major": 1, "critical": 2}
_WARM_UP_GATEWAY = "gridsense-warm-up"  # never committed: see IncidentService.warm_up


@dataclass(frozen=True, slots=True)
class IncidentChange:
    event: str  # opened | updated | cleared | backfilled
    incident: dict[str, Any]
    grid_id: str | None

    @property
    def live(self) -> bool:
        """Worth a page to the grid's staff (a backfilled or suppressed one goes to control
        only)."""
        return self.event != "backfilled" and not self.incident.get("suppressed")


# (log level, counter name, log event, its fields): reported only once the transaction has
# committed, so a rolled-back and retried batch neither double-counts nor logs what did not
# happen. The line is formatted only if its level is logged: at 1,000 incidents/s formatting
# INFO lines nobody reads cost more than the statements that store them.
Note = tuple[int, str, str, dict[str, Any]]


class IncidentService:
    def __init__(self, factory: sessionmaker[Session], hub: LiveHub, counters: Counters,
                 late_after_s: float = 300.0, lifecycle: LifecycleConfig | None = None,
                 clock: Callable[[], datetime] = utc_now) -> None:
        self.factory = factory
        self.clock = clock  # server time: lateness, SLA clocks (tests move it)
        self.lifecycle = lifecycle or LifecycleConfig()
        self.silences = SilenceCache()
        self.hub = hub
        self.counters = counters
        self.late_after = timedelta(seconds=late_after_s)

    def warm_up(self) -> None:
        """Fold an opening and a repeat of a made-up incident, then roll back: SQLAlchemy
        compiles each statement the first time it runs, and the first real batch after a
        start would otherwise pay that (tens of ms) while incidents queue behind it."""
        offline = self.lifecycle.noise_under_gateway_offline
        type_ = offline[0] if offline else "warm_up"  # so the gateway_offline query runs too
        messages = [IncidentMessage(gateway=_WARM_UP_GATEWAY, seq=seq, ts=self.clock(),
                                    point=f"{_WARM_UP_GATEWAY}.point", type=type_,
                                    severity=Severity.MAJOR) for seq in (1, 2)]
        with self.factory() as session, session.no_autoflush:
            try:
                now = self.clock()
                for message in messages:  # the second one finds the first open: an update
                    # A cache of its own: the real one must not start its TTL here.
                    _BatchFold(session, [message], now, now - self.late_after, self.lifecycle,
                               SilenceCache()).run()
                    record_sequences(session, [(message.gateway, message.seq)])
                    session.flush()
            finally:
                session.rollback()

    async def handle(self, message: IncidentMessage) -> IncidentChange | None:
        return (await self.handle_batch([message]))[0]

    async def handle_batch(self, messages: list[IncidentMessage]) -> list[IncidentChange | None]:
        """Record messages in arrival order (retrying while the database is unreachable),
        then publish each change to the live hub. One transaction per batch keeps up with
        bursts that one commit per message (~ms on SQLite) could not."""
        changes = await retry_transient(lambda: self.record_batch(messages), self.counters,
                                        "incidents")
        for change in changes:
            if change is not None:
                self.hub.publish(change.grid_id, {"type": "incident", "event": change.event,
                                                  "incident": change.incident},
                                 live=change.live)
        return changes

    def record_batch(self, messages: list[IncidentMessage]) -> list[IncidentChange | None]:
        """Fold messages into the database, their sequence numbers recorded in the same
        transaction; None for a message that changed nothing."""
        try:
            results, redelivered = self._fold_in_transaction(messages)
        except IntegrityError:
            # Another server process recorded one of these events or opened one of these
            # incidents at the same moment: redo one by one, each pass seeing its rows.
            self.counters.inc("incidents.write_conflicts")
            results, redelivered = [], 0
            for message in messages:
                try:
                    one, again = self._fold_in_transaction([message])
                except IntegrityError:
                    one, again = self._fold_in_transaction([message])
                results += one
                redelivered += again
        if redelivered:
            self.counters.inc("ingest.redelivered", redelivered)
        changes = []
        counts: Counter[str] = Counter()  # one locked increment per name, not per message
        for change, notes in results:
            for level, counter, event, fields in notes:
                counts[counter] += 1
                if log.isEnabledFor(level):
                    log.log(level, kv(event, **fields))
            changes.append(change)
        for counter, count in counts.items():
            self.counters.inc(counter, count)
        return changes

    def _fold_in_transaction(
        self, messages: list[IncidentMessage]
    ) -> tuple[list[tuple[IncidentChange | None, list[Note]]], int]:
        with self.factory.begin() as session, session.no_autoflush:
            now = self.clock()
            results = _BatchFold(session, messages, now, now - self.late_after,
                                 self.lifecycle, self.silences).run()
            redelivered = record_sequences(session, [(m.gateway, m.seq) for m in messages])
            return results, sum(redelivered.values())


class _BatchFold:
    """Fold a batch of messages inside one transaction with a handful of queries: which event
    ids are already stored, which (point, type) pairs have an open incident, which points
    are registered — then everything in memory, in order, and one flush at commit."""

    def __init__(self, session: Session, messages: list[IncidentMessage], now: datetime,
                 late_before: datetime, lifecycle: LifecycleConfig,
                 silences: SilenceCache) -> None:
        self.session = session
        self.now = now
        self.messages = messages
        self.lifecycle = lifecycle
        self.late_before = late_before  # device times before this arrived late
        self.events: list[dict[str, Any]] = []  # incident_events rows, inserted by run()
        points = {m.point for m in messages}
        self.seen = set(session.scalars(
            select(IncidentEvent.event_id).where(
                IncidentEvent.event_id.in_([m.id for m in messages])
            )
        ))
        pairs = {(m.point, m.type) for m in messages}
        self.open: dict[tuple[str, str], Incident] = {
            (row.point_id, row.type): row
            for row in session.scalars(
                select(Incident)
                .where(Incident.point_id.in_(points), Incident.state.not_in(FINAL_STATES))
                .with_for_update()
            )
            if (row.point_id, row.type) in pairs
        }
        self.points = {p.id: p for p in session.scalars(select(Point).where(Point.id.in_(points)))}
        self.suppressor = Suppressor(session, [(m.gateway, m.type) for m in messages], now,
                                     lifecycle, silences)
        # A repeat after closing opens a new incident linked to the last closed one.
        reopen = pairs - self.open.keys()
        self.closed: dict[tuple[str, str], str] = {}
        if reopen:
            for row in session.execute(
                select(Incident.id, Incident.point_id, Incident.type)
                .where(Incident.point_id.in_({p for p, _ in reopen}),
                       Incident.state.in_(FINAL_STATES))
                .order_by(Incident.closed_at, Incident.id)
            ):
                if (row.point_id, row.type) in reopen:
                    self.closed[(row.point_id, row.type)] = row.id

    def run(self) -> list[tuple[IncidentChange | None, list[Note]]]:
        results = [self._fold(message) for message in self.messages]
        if self.events:
            # The ORM would insert these one statement per row (it fetches each new id, which
            # SQLite cannot return in order for a multi-row insert); nothing here needs the
            # ids, so one executemany. After the flush: the rows reference the incidents.
            self.session.flush()
            self.session.execute(insert(IncidentEvent), self.events)
        return results

    def _fold(self, message: IncidentMessage) -> tuple[IncidentChange | None, list[Note]]:
        ids = {"event": message.id, "gateway": message.gateway, "point": message.point}
        if message.id in self.seen:
            return None, [(logging.INFO, "incidents.duplicate_events",
                           "incident_event_duplicate", ids)]
        self.seen.add(message.id)
        key = (message.point, message.type)
        incident = self.open.get(key)
        late = message.ts < self.late_before
        notes: list[Note] = []
        if incident is None:
            if message.state is AlarmState.CLEARED:
                return None, [(logging.INFO, "incidents.cleared_without_open",
                               "incident_cleared_without_open", {**ids, "type": message.type})]
            incident = self.open[key] = self._open(self.points.get(message.point), message,
                                                   self.now, notes)
            incident.backfilled = late
            incident.previous_id = self.closed.get(key)
            incident.suppressed = self.suppressor.reason(incident)
            self.session.add(incident)
            on_opened(self.session, incident, self.lifecycle, self.now,
                      note=f"reopens {incident.previous_id}" if incident.previous_id else "")
            event = "opened"
        else:
            event = self._append(incident, message)
        # What it changed is kept for the log; what is pushed says "this is old news".
        change, event = event, ("backfilled" if late else event)
        self.events.append({
            "incident_id": incident.id, "event_id": message.id, "seq": message.seq,
            "ts": message.ts, "state": message.state.value, "value": message.value,
            "received_at": self.now,
        })
        notes.append((logging.INFO, f"incidents.{event}", f"incident_{event}", {
            "incident": incident.id, **ids, "type": message.type, "grid": incident.grid_id,
            "count": incident.count, "alarm": incident.alarm,
            "change": change if late else None, "ts": message.ts.isoformat() if late else None,
        }))
        return IncidentChange(event, IncidentView.of(incident).to_json(), incident.grid_id), notes

    @staticmethod
    def _open(point: Point | None, message: IncidentMessage, now: datetime,
              notes: list[Note]) -> Incident:
        if point is None:
            notes.append((logging.WARNING, "incidents.unknown_point",
                          "incident_from_unknown_point", {
                              "event": message.id, "gateway": message.gateway,
                              "point": message.point, "visible_to": "control"}))
        elif point.gateway != message.gateway:
            notes.append((logging.WARNING, "incidents.gateway_mismatch",
                          "incident_point_on_other_gateway", {
                              "event": message.id, "gateway": message.gateway,
                              "point": message.point, "registered_gateway": point.gateway}))
        incident = Incident(
            id=new_event_id(), point_id=message.point,
            grid_id=point.grid_id if point is not None else None, gateway=message.gateway,
            type=message.type, severity=message.severity.value, state="new",
            alarm=AlarmState.ACTIVE.value, opened_at=message.ts, last_seen_at=message.ts,
            count=1, value=message.value, threshold=message.threshold,
            unit=message.unit or None, message=message.message,
            first_event_id=message.id,
            state_changed_at=now, closed_at=None, backfilled=False,
        )
        return incident

    @staticmethod
    def _append(incident: Incident, message: IncidentMessage) -> str:
        """Update an open incident in place; returns the live event name."""
        was_active = incident.alarm == AlarmState.ACTIVE.value
        if message.state is AlarmState.ACTIVE:
            incident.count += 1
            if _SEVERITY_RANK[message.severity.value] > _SEVERITY_RANK[incident.severity]:
                incident.severity = message.severity.value
                on_severity_raised(incident)
        # A late (older) event is recorded but must not roll the alarm state back.
        if message.ts >= incident.last_seen_at:
            incident.last_seen_at = message.ts
            incident.alarm = message.state.value
            if message.value is not None:
                incident.value = message.value
            if message.threshold is not None:
                incident.threshold, incident.unit = message.threshold, (message.unit or None)
            if message.message:
                incident.message = message.message
        if was_active and incident.alarm == AlarmState.CLEARED.value:
            return "cleared"
        return "updated"


