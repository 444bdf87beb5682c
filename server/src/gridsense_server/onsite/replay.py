"""Client action ids: a phone that queued an action offline may send it more than once (it
never saw the first answer); the first is applied, later ones get the first one's answer."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from ..db.onsite_models import ClientAction
from ..workorders.states import Refused

ACTION_ID_PATTERN = r"^[A-Za-z0-9_.:\-]{8,64}$"


def replayed(session: Session, action_id: str, username: str, incident_id: str,
             action: str) -> dict[str, Any] | None:
    """The stored answer when this action id was applied already, else None; Refused (409)
    when the id was used by someone else or for another action (a client bug or a guess)."""
    row = session.get(ClientAction, action_id)
    if row is None:
        return None
    if (row.username, row.incident_id, row.action) != (username, incident_id, action):
        raise Refused(409, "此动作编号已用于另一动作 / this action id was used for another "
                           f"action ({row.action} on {row.incident_id})")
    return row.result


def remember(session: Session, action_id: str, username: str, incident_id: str, action: str,
             result: dict[str, Any], now: datetime) -> None:
    """In the action's own transaction: the id is taken exactly when the action is applied."""
    session.add(ClientAction(action_id=action_id, username=username, incident_id=incident_id,
                             action=action, at=now, result=result))
