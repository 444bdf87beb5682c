"""GET /api/v1/incidents/{id}/snapshot: the camera JPEG of an incident (image/jpeg).

The newest event of the incident that has a snapshot wins (a repeat of the same incident
brings a newer picture). Visibility is the incident's: a user who cannot see the incident's
grid gets 404, as for the incident itself.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import FileResponse

from ..workorders.snapshots import SnapshotStore
from .deps import Context, CurrentViewer, visible_incident

router = APIRouter()


@router.get(
    "/api/v1/incidents/{incident_id}/snapshot", tags=["incidents"],
    response_class=FileResponse,
    responses={200: {"content": {"image/jpeg": {}}, "description": "the JPEG"},
               404: {"description": "no such incident, or it has no snapshot (yet)"}},
)
def get_snapshot(incident_id: str, request: Request, viewer: CurrentViewer,
                 context: Context) -> FileResponse:
    store: SnapshotStore | None = getattr(request.app.state, "snapshots", None)
    with context.factory() as session:
        incident, event_ids = visible_incident(session, viewer, incident_id)
        gateway = incident.gateway
    # Newest first: a repeat brings a newer picture.
    path = store.find(gateway, event_ids[::-1]) if store is not None else None
    if path is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "this incident has no snapshot")
    context.counters.inc("api.snapshots_served")
    return FileResponse(path, media_type="image/jpeg",
                        headers={"Cache-Control": "private, max-age=86400"})
