"""On-site check-in: the worker proves they are at the incident's point by its label (the QR
scanned, or the code under it typed). Recorded in the incident's history as ``checkin_qr`` or
``checkin_code`` with the time; the work-order state does not change."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from sqlalchemy.orm import Session

from ..db.models import FINAL_STATES, Incident, IncidentTransition
from ..registry.viewers import Viewer
from ..workorders.states import STAFF, Refused
from ..workorders.transitions import check_grid, record
from .labels import LabelSigner, current_version

CheckinBy = Literal["qr", "code"]
NOTES = {"qr": "扫码签到 / checked in by QR label",
         "code": "输入编码签到 / checked in by label code"}


def check_in(session: Session, signer: LabelSigner, incident_id: str, viewer: Viewer,
             by: CheckinBy, text: str, now: datetime) -> tuple[Incident, IncidentTransition]:
    """Raises Refused (who, what, state) or LabelRefused (the label or code is not this
    point's: the caller counts and throttles those)."""
    incident = session.get(Incident, incident_id, with_for_update=True)
    if incident is None or not viewer.sees_grid(incident.grid_id):
        raise Refused(404, f"no incident {incident_id}")
    check_grid(incident, viewer)
    if viewer.role not in STAFF:
        raise Refused(403, f"a {viewer.role} does not check in at incidents")
    if incident.state in FINAL_STATES:
        raise Refused(409, f"incident {incident_id} is {incident.state}: nothing to check in for")
    version = current_version(session, incident.point_id)
    if by == "qr":
        signer.check_qr(text, incident.point_id, version)
    else:
        signer.check_code(text, incident.point_id, version)
    entry = record(session, incident, f"checkin_{by}", incident.state, actor=viewer.username,
                   role=viewer.role, now=now, note=NOTES[by])
    return incident, entry
