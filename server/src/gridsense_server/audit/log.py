"""Writing audit rows. Rows are only ever added here and pruned by retention.py: no code path
updates one, and the HTTP API has no route that could."""

from __future__ import annotations

import getpass
import json
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from gridsense_protocol import utc_now

from ..db.web_models import (
    ADDRESS_LEN,
    AUDIT_ACTION_LEN,
    AUDIT_ACTOR_LEN,
    AUDIT_DETAIL_LEN,
    AUDIT_TARGET_LEN,
    AuditEntry,
)

SYSTEM = "system"  # the server itself (registry load at start, sync pushes)
CLI_ADDRESS = "local"  # a command run on the server machine


def cli_actor() -> str:
    """``cli:<login>``: the operating-system account that ran a command."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no passwd entry (containers)
        return "cli:?"


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def entry(actor: str, action: str, target: str, detail: str | dict[str, Any] = "",
          address: str = "", at: datetime | None = None) -> AuditEntry:
    """A row, every field cut to its column (an oversized value must not fail the action)."""
    text = detail if isinstance(detail, str) else json.dumps(detail, ensure_ascii=False,
                                                              default=str, sort_keys=True)
    return AuditEntry(at=at or utc_now(), actor=_cut(actor or "?", AUDIT_ACTOR_LEN),
                      action=_cut(action, AUDIT_ACTION_LEN), target=_cut(target, AUDIT_TARGET_LEN),
                      detail=_cut(text, AUDIT_DETAIL_LEN), address=_cut(address, ADDRESS_LEN))


def record(session: Session, actor: str, action: str, target: str,
           detail: str | dict[str, Any] = "", address: str = "") -> None:
    """Add an audit row to ``session``'s transaction."""
    session.add(entry(actor, action, target, detail, address))


def record_now(factory: sessionmaker[Session], actor: str, action: str, target: str,
               detail: str | dict[str, Any] = "", address: str = "") -> None:
    """Record in a transaction of its own (a refusal, where nothing else is committed).
    Blocking: call from a worker thread."""
    with factory.begin() as session:
        record(session, actor, action, target, detail, address)
