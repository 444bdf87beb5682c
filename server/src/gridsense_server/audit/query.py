"""Reading the audit log: filters, pages (newest first, by id cursor), CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session, sessionmaker

from ..db.web_models import AuditEntry

CSV_COLUMNS = ("id", "at", "actor", "action", "target", "detail", "address")
EXPORT_CHUNK = 1000


@dataclass(frozen=True, slots=True)
class AuditFilter:
    actor: str | None = None
    action: str | None = None  # exact, or a prefix when it ends with "." ("login." → every login)
    target: str | None = None
    since: datetime | None = None  # at or after
    until: datetime | None = None  # before

    def apply(self, query: Select[Any]) -> Select[Any]:
        if self.actor is not None:
            query = query.where(AuditEntry.actor == self.actor)
        if self.action is not None:
            query = query.where(AuditEntry.action.startswith(self.action, autoescape=True)
                                if self.action.endswith(".") else AuditEntry.action == self.action)
        if self.target is not None:
            query = query.where(AuditEntry.target == self.target)
        if self.since is not None:
            query = query.where(AuditEntry.at >= self.since)
        if self.until is not None:
            query = query.where(AuditEntry.at < self.until)
        return query


def page(session: Session, filters: AuditFilter, limit: int,
         before_id: int | None = None) -> list[AuditEntry]:
    """Newest first; the next page is ``before_id`` = the last row's id."""
    query = filters.apply(select(AuditEntry))
    if before_id is not None:
        query = query.where(AuditEntry.id < before_id)
    return list(session.scalars(query.order_by(AuditEntry.id.desc()).limit(limit)))


def as_dict(row: AuditEntry) -> dict[str, Any]:
    return {"id": row.id, "at": row.at.isoformat(), "actor": row.actor, "action": row.action,
            "target": row.target, "detail": row.detail, "address": row.address}


def _csv_line(values: list[Any]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerow([_defused(v) for v in values])
    return buffer.getvalue()


def _defused(value: Any) -> Any:
    # A cell starting with = + - @ is a formula to a spreadsheet: an attacker choosing a user
    # name or note must not get code run on the auditor's machine.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def export_csv(factory: sessionmaker[Session], filters: AuditFilter,
               max_rows: int) -> Iterator[str]:
    """CSV text (header first), oldest first, in chunks: memory stays bounded however many
    rows match. Blocking reads: iterate from a worker thread."""
    yield _csv_line(list(CSV_COLUMNS))
    after = 0
    sent = 0
    while sent < max_rows:
        with factory() as session:
            rows = list(session.scalars(
                filters.apply(select(AuditEntry)).where(AuditEntry.id > after)
                .order_by(AuditEntry.id).limit(min(EXPORT_CHUNK, max_rows - sent))))
        if not rows:
            return
        for row in rows:
            yield _csv_line([as_dict(row)[c] for c in CSV_COLUMNS])
        after = rows[-1].id
        sent += len(rows)
