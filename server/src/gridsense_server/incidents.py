"""Turn edge Incident messages into work orders.

One open incident per (point, type): a repeat while it is open is appended to it (count + 1,
last_seen_at = the latest DEVICE time), ``cleared`` sets the alarm to cleared but leaves the
work order open for a person to close. Every event id is stored once (a unique column), so a
replayed message — QoS 1 redelivery, an edge backfill — changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from gridsense_protocol import AlarmState, new_event_id, utc_now
from gridsense_protocol import Incident as IncidentMessage

from .backoff import Backoff
from .counters import Counters
from .db.models import FINAL_STATES, Incident, IncidentEvent, Point
from .live import LiveHub
from .logs import kv
from .schemas import IncidentView

log = logging.getLogger(__name__)

_SEVERITY_RANK = {"minor": 0, "major": 1, "critical": 2}


@dataclass(frozen=True, slots=True)
class IncidentChange:
    event: str  # opened | updated | cleared
    incident: dict[str, Any]
    grid_id: str | None


# (log level, counter name, log line): reported only once the transaction has committed, so a
# rolled-back and retried batch neither double-counts nor logs what did not happen.
Note = tuple[int, str, str]


class IncidentService:
    def __init__(self, factory: sessionmaker[Session], hub: LiveHub, counters: Counters) -> None:
        self.factory = factory
        self.hub = hub
        self.counters = counters

    async def handle(self, message: IncidentMessage) -> IncidentChange | None:
        return (await self.handle_batch([message]))[0]

    async def handle_batch(self, messages: list[IncidentMessage]) -> list[IncidentChange | None]:
        """Record messages in arrival order (retrying while the database is unreachable),
        then publish each change to the live hub. One transaction per batch keeps up with
        bursts that one commit per message (~ms on SQLite) could not."""
        backoff = Backoff(initial_s=0.2, cap_s=10.0)
        while True:
            try:
                changes = await asyncio.to_thread(self.record_batch, messages)
                break
            except DBAPIError as exc:
                if isinstance(exc, IntegrityError) or not (
                    exc.connection_invalidated or _is_transient(exc)
                ):
                    raise
                self.counters.inc("incidents.db_retries")
                log.warning(kv("incident_db_retry", events=len(messages),
                               first_event=messages[0].id, error=str(exc.orig)[:200]))
                await asyncio.sleep(backoff.next_delay())
        for change in changes:
            if change is not None:
                self.hub.publish(change.grid_id, {"type": "incident", "event": change.event,
                                                  "incident": change.incident})
        return changes

    def record_batch(self, messages: list[IncidentMessage]) -> list[IncidentChange | None]:
        """Fold messages into the database; None for a message that changed nothing."""
        try:
            results = self._fold_in_transaction(messages)
        except IntegrityError:
            # Another server process recorded one of these events or opened one of these
            # incidents at the same moment: redo one by one, each pass seeing its rows.
            self.counters.inc("incidents.write_conflicts")
            results = []
            for message in messages:
                try:
                    results += self._fold_in_transaction([message])
                except IntegrityError:
                    results += self._fold_in_transaction([message])
        changes = []
        for change, notes in results:
            for level, counter, line in notes:
                self.counters.inc(counter)
                log.log(level, line)
            changes.append(change)
        return changes

    def _fold_in_transaction(
        self, messages: list[IncidentMessage]
    ) -> list[tuple[IncidentChange | None, list[Note]]]:
        with self.factory.begin() as session, session.no_autoflush:
            return _BatchFold(session, messages).run()


class _BatchFold:
    """Fold a batch of messages inside one transaction with a handful of queries: which event
    ids are already stored, which (point, type) pairs have an open incident, which points
    are registered — then everything in memory, in order, and one flush at commit."""

    def __init__(self, session: Session, messages: list[IncidentMessage]) -> None:
        self.session = session
        self.messages = messages
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

    def run(self) -> list[tuple[IncidentChange | None, list[Note]]]:
        return [self._fold(message) for message in self.messages]

    def _fold(self, message: IncidentMessage) -> tuple[IncidentChange | None, list[Note]]:
        ids = {"event": message.id, "gateway": message.gateway, "point": message.point}
        if message.id in self.seen:
            return None, [(logging.INFO, "incidents.duplicate_events",
                           kv("incident_event_duplicate", **ids))]
        self.seen.add(message.id)
        key = (message.point, message.type)
        incident = self.open.get(key)
        notes: list[Note] = []
        if incident is None:
            if message.state is AlarmState.CLEARED:
                return None, [(logging.INFO, "incidents.cleared_without_open",
                               kv("incident_cleared_without_open", **ids, type=message.type))]
            incident = self.open[key] = self._open(self.points.get(message.point), message, notes)
            self.session.add(incident)
            event = "opened"
        else:
            event = self._append(incident, message)
        self.session.add(
            IncidentEvent(
                incident_id=incident.id, event_id=message.id, seq=message.seq, ts=message.ts,
                state=message.state.value, value=message.value, received_at=utc_now(),
            )
        )
        notes.append((logging.INFO, f"incidents.{event}", kv(
            f"incident_{event}", incident=incident.id, **ids, type=message.type,
            grid=incident.grid_id, count=incident.count, alarm=incident.alarm,
        )))
        return IncidentChange(event, IncidentView.of(incident).to_json(), incident.grid_id), notes

    @staticmethod
    def _open(point: Point | None, message: IncidentMessage, notes: list[Note]) -> Incident:
        if point is None:
            notes.append((logging.WARNING, "incidents.unknown_point", kv(
                "incident_from_unknown_point", event=message.id, gateway=message.gateway,
                point=message.point, visible_to="control",
            )))
        elif point.gateway != message.gateway:
            notes.append((logging.WARNING, "incidents.gateway_mismatch", kv(
                "incident_point_on_other_gateway", event=message.id, gateway=message.gateway,
                point=message.point, registered_gateway=point.gateway,
            )))
        now = utc_now()
        incident = Incident(
            id=new_event_id(), point_id=message.point,
            grid_id=point.grid_id if point is not None else None, gateway=message.gateway,
            type=message.type, severity=message.severity.value, state="new",
            alarm=AlarmState.ACTIVE.value, opened_at=message.ts, last_seen_at=message.ts,
            count=1, value=message.value, message=message.message, first_event_id=message.id,
            state_changed_at=now, closed_at=None,
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
        # A late (older) event is recorded but must not roll the alarm state back.
        if message.ts >= incident.last_seen_at:
            incident.last_seen_at = message.ts
            incident.alarm = message.state.value
            if message.value is not None:
                incident.value = message.value
            if message.message:
                incident.message = message.message
        if was_active and incident.alarm == AlarmState.CLEARED.value:
            return "cleared"
        return "updated"


def _is_transient(exc: DBAPIError) -> bool:
    # "database is locked" (SQLite) and connection failures (PostgreSQL restart) pass.
    text = str(exc.orig).lower()
    return any(s in text for s in ("locked", "connection", "server closed", "terminating"))
