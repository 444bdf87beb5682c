"""Apply a person's incident action once per client action id (see onsite/replay.py): the
phone's offline queue resends until it sees an answer, and each resend gets the first answer."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gridsense_protocol import utc_now

from ..onsite.replay import remember, replayed
from ..registry.viewers import Viewer
from ..workorders.views import ActionResult
from .context import ApiContext


def apply_once(context: ApiContext, viewer: Viewer, incident_id: str, action: str,
               action_id: str | None, apply: Callable[[Session], ActionResult],
               ) -> tuple[ActionResult, bool]:
    """(the answer, whether it is a replay). ``apply`` runs in the transaction that also
    takes the action id; it raises Refused to refuse (nothing is then remembered)."""
    if action_id is not None:
        stored = _stored(context, viewer, incident_id, action, action_id)
        if stored is not None:
            return stored, True
    try:
        with context.factory.begin() as session:
            result = apply(session)
            if action_id is not None:
                remember(session, action_id, viewer.username, incident_id, action,
                         result.model_dump(mode="json"), utc_now())
    except IntegrityError:
        # The same id committed meanwhile by a concurrent resend: answer as it was answered.
        stored = None if action_id is None else _stored(context, viewer, incident_id, action,
                                                        action_id)
        if stored is None:
            raise
        return stored, True
    return result, False


def _stored(context: ApiContext, viewer: Viewer, incident_id: str, action: str,
            action_id: str) -> ActionResult | None:
    with context.factory() as session:
        stored = replayed(session, action_id, viewer.username, incident_id, action)
    if stored is None:
        return None
    context.counters.inc("api.actions_replayed")
    return ActionResult.model_validate(stored)
