"""Who an access event decided on a pass concerns: the visitor and the inviting resident (for a
resident's own pass, the resident), for the access log's API and screens."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..db.access_models import Credential
from ..db.pass_models import AccessPass


@dataclass(frozen=True, slots=True)
class PassNames:
    kind: str
    visitor: str | None
    inviter: str  # credential id
    inviter_name: str | None


def pass_names(session: Session, pass_ids: set[str]) -> dict[str, PassNames]:
    if not pass_ids:
        return {}
    rows = session.execute(
        select(AccessPass.pass_id, AccessPass.kind, AccessPass.visitor_name, AccessPass.holder,
               Credential.holder)
        .outerjoin(Credential, Credential.id == AccessPass.holder)
        .where(AccessPass.pass_id.in_(sorted(pass_ids)))).all()
    return {r[0]: PassNames(r[1], r[2], r[3], r[4]) for r in rows}
