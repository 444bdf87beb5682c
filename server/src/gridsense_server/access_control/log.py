"""The access log: every AccessEvent a gateway reported, stored once per event id.

A batch is one transaction that also records the messages' sequence numbers, so an access
event is durable before its MQTT message is acknowledged. The same events go to InfluxDB as
measurement ``access`` (``access_line``). Card numbers never reach this module: events carry
the keyed hash the gateway computed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from gridsense_protocol import AccessEvent, utc_now

from ..counters import Counters
from ..db.access_models import AccessLogEntry
from ..db.retry import retry_transient
from ..db.sequences import record_sequences
from ..logs import kv
from ..timeseries.line_protocol import escape_tag, grid_tag, timestamp_ns
from .correlate import CardCorrelator

log = logging.getLogger(__name__)

GridOf = Callable[[str], str | None]


def _field_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def access_line(message: AccessEvent, grid: str | None) -> str:
    """``access,door=..,gateway=..,grid=..,point=..,result=.. count=1i,method="card",... <ns>``"""
    tags = (f"access,door={escape_tag(message.door)},gateway={escape_tag(message.gateway)},"
            f"grid={grid_tag(grid)},point={escape_tag(message.point)},"
            f"result={escape_tag(message.result.value)}")
    fields = [f"count=1i,method={_field_string(message.method)}",
              f"offline={'true' if message.offline else 'false'}"]
    if message.credential is not None:
        fields.append(f"credential={_field_string(message.credential)}")
    if message.card is not None:
        fields.append(f"card={_field_string(message.card)}")
    if message.reason is not None:
        fields.append(f"reason={_field_string(message.reason)}")
    return f"{tags} {','.join(fields)} {timestamp_ns(message.ts)}"


@dataclass(frozen=True, slots=True)
class AccessQuery:
    door: str | None = None
    credential: str | None = None
    gateway: str | None = None
    result: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    grids: frozenset[str] | None = None  # None: every grid (and events with no grid)
    limit: int = 200


class AccessLogService:
    correlator: CardCorrelator | None = None

    def __init__(self, factory: sessionmaker[Session], counters: Counters,
                 grid_of: GridOf) -> None:
        self.factory = factory
        self.counters = counters
        self.grid_of = grid_of

    async def record_batch(self, messages: list[AccessEvent]) -> int:
        """Stores those not stored yet; returns how many were new."""
        stored = await retry_transient(lambda: self._record(messages), self.counters,
                                       "access_log")
        self.counters.inc("access.stored", stored)
        self.counters.inc("access.duplicate_events", len(messages) - stored)
        for message in messages:
            log.info(kv("access_event", gateway=message.gateway, event=message.id,
                        seq=message.seq, point=message.point, door=message.door,
                        result=message.result.value, credential=message.credential,
                        card=message.card, reason=message.reason))
        if self.correlator is not None:  # one card at two places (correlate.py)
            await self.correlator.observe(messages)
        return stored

    def _record(self, messages: list[AccessEvent]) -> int:
        with self.factory.begin() as session:
            redelivered = record_sequences(session, [(m.gateway, m.seq) for m in messages])
            if any(redelivered.values()):
                self.counters.inc("ingest.redelivered")
            ids = [m.id for m in messages]
            seen = set(session.scalars(
                select(AccessLogEntry.event_id).where(AccessLogEntry.event_id.in_(ids))))
            now = utc_now()
            new = 0
            for message in messages:
                if message.id in seen:
                    continue
                seen.add(message.id)
                session.add(AccessLogEntry(
                    event_id=message.id, gateway=message.gateway, seq=message.seq,
                    ts=message.ts, point_id=message.point, grid_id=self.grid_of(message.point),
                    door=message.door, result=message.result.value, method=message.method,
                    credential_id=message.credential, card_hash=message.card,
                    reason=message.reason, offline=message.offline,
                    backfill=message.backfill, credentials_version=message.credentials_version,
                    received_at=now,
                ))
                new += 1
            return new

    def query(self, session: Session, q: AccessQuery) -> list[AccessLogEntry]:
        """Newest first."""
        stmt = select(AccessLogEntry)
        if q.grids is not None:
            stmt = stmt.where(AccessLogEntry.grid_id.in_(sorted(q.grids)))
        for column, value in ((AccessLogEntry.door, q.door),
                              (AccessLogEntry.credential_id, q.credential),
                              (AccessLogEntry.gateway, q.gateway),
                              (AccessLogEntry.result, q.result)):
            if value is not None:
                stmt = stmt.where(column == value)
        if q.since is not None:
            stmt = stmt.where(AccessLogEntry.ts >= q.since)
        if q.until is not None:
            stmt = stmt.where(AccessLogEntry.ts < q.until)
        stmt = stmt.order_by(AccessLogEntry.ts.desc(), AccessLogEntry.id.desc()).limit(q.limit)
        return list(session.scalars(stmt))
