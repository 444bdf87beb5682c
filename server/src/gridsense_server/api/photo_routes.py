"""Incident photos over HTTP: upload from the phone (multipart), list, and serve them (and
their thumbnails) to whoever may see the incident; 404 alike for no such incident, photo, or
an incident in another grid."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse
from pydantic import BaseModel
from sqlalchemy import select
from starlette.datastructures import UploadFile

from gridsense_protocol import utc_now

from ..audit import record
from ..db.onsite_models import IncidentPhoto
from ..i18n import catalogue
from ..onsite.photo_images import prepare
from ..onsite.photo_store import PhotoStore
from ..onsite.refusals import PhotoRefused
from ..registry.viewers import Viewer
from ..workorders.states import STAFF
from ..workorders.views import PhotoLink
from .context import ApiContext
from .deps import Context, CurrentViewer, visible_incident
from .web_auth import address_of

router = APIRouter()
FORM_OVERHEAD = 64 * 1024  # multipart boundaries and headers around the files
PhotoId = Annotated[str, Path(pattern="^ph[0-9a-f]{24}$")]


class PhotoView(BaseModel):
    id: str
    url: str
    thumbnail_url: str | None
    media_type: str
    bytes: int
    width: int
    height: int
    location_kept: bool
    uploaded_by: str | None = None
    uploaded_at: datetime | None = None


def refusal_detail(key: str, detail: str) -> str:
    """"中文 / English" for an error the catalogues name by ``key``."""
    return f"{catalogue('zh-CN').messages['errors'].get(key, '')} / {detail}"


def _store(request: Request) -> PhotoStore:
    store: PhotoStore | None = getattr(request.app.state, "photos", None)
    if store is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "photos not configured")
    return store


@router.post("/api/v1/incidents/{incident_id}/photos", response_model=list[PhotoView],
             tags=["incidents"], status_code=status.HTTP_201_CREATED,
             responses={413: {"description": "too large"}, 415: {"description": "not an image"},
                        409: {"description": "too many photos, or the store is full"}})
async def upload_photos(incident_id: str, request: Request, viewer: CurrentViewer,
                        context: Context) -> list[PhotoView]:
    """Multipart ``file`` fields (one or more): JPEG, PNG or WebP by their bytes. The same
    photo sent twice is stored once (same id). Attach them with the action's ``photos``."""
    store = _store(request)
    config = store.config
    length = request.headers.get("content-length")
    if length is None or not length.isdigit():
        raise HTTPException(status.HTTP_411_LENGTH_REQUIRED, "a Content-Length is required")
    if int(length) > config.max_bytes * config.max_per_incident + FORM_OVERHEAD:
        raise HTTPException(status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
                            refusal_detail("photo_too_large", f"{length} bytes is over the limit"))
    form = await request.form(max_files=config.max_per_incident, max_fields=4)
    try:
        files = [f for f in form.getlist("file") if isinstance(f, UploadFile)]
        if not files:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                                "send the photos as multipart fields named file")
        uploads = [await _read(f, config.max_bytes) for f in files]
    finally:
        await form.close()
    return await run_in_threadpool(_keep, context, store, viewer, incident_id, uploads,
                                   address_of(request))


async def _read(upload: UploadFile, limit: int) -> bytes:
    data = await upload.read(limit + 1)
    if len(data) > limit:
        raise HTTPException(status.HTTP_413_REQUEST_ENTITY_TOO_LARGE, refusal_detail(
            "photo_too_large", f"{upload.filename or 'a photo'} is over {limit} bytes"))
    return data


def _keep(context: ApiContext, store: PhotoStore, viewer: Viewer, incident_id: str,
          uploads: list[bytes], address: str) -> list[PhotoView]:
    config = store.config
    if viewer.role not in STAFF:
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            f"photos are added by grid staff, not a {viewer.role}")
    try:
        prepared = [prepare(data, keep_location=config.keep_location,
                            max_pixels=config.max_pixels, thumbnail_px=config.thumbnail_px)
                    for data in uploads]
        now = utc_now()
        with context.factory.begin() as session:
            visible_incident(session, viewer, incident_id)
            stored = [store.add(session, incident_id, data, photo, viewer.username, now)
                      for data, photo in zip(uploads, prepared, strict=True)]
            new = [s.id for s in stored if s.new]
            if new:
                record(session, viewer.username, "incident.photos", incident_id,
                       {"photos": new}, address)
    except PhotoRefused as refused:
        context.counters.inc(f"api.photos_refused.{refused.key}")
        code = (status.HTTP_415_UNSUPPORTED_MEDIA_TYPE if refused.key == "photo_type"
                else status.HTTP_409_CONFLICT if refused.key in ("photo_too_many",
                                                                 "photo_store_full")
                else status.HTTP_422_UNPROCESSABLE_CONTENT)
        raise HTTPException(code, refusal_detail(refused.key, refused.detail)) from None
    context.counters.inc("api.photos_stored", len(new))
    return [PhotoView(**PhotoLink.of(incident_id, s.id).model_dump(), id=s.id,
                      media_type=s.media_type, bytes=s.bytes, width=s.width, height=s.height,
                      location_kept=s.location_kept) for s in stored]


@router.get("/api/v1/incidents/{incident_id}/photos", response_model=list[PhotoView],
            tags=["incidents"])
def list_photos(incident_id: str, viewer: CurrentViewer, context: Context) -> list[PhotoView]:
    with context.factory() as session:
        visible_incident(session, viewer, incident_id)
        rows = session.scalars(select(IncidentPhoto).where(
            IncidentPhoto.incident_id == incident_id).order_by(IncidentPhoto.uploaded_at))
        return [PhotoView(**PhotoLink.of(incident_id, r.id).model_dump(), id=r.id,
                          media_type=r.media_type, bytes=r.bytes, width=r.width,
                          height=r.height, location_kept=r.location_kept,
                          uploaded_by=r.uploaded_by, uploaded_at=r.uploaded_at) for r in rows]


def _serve(request: Request, context: ApiContext, viewer: Viewer, incident_id: str,
           photo: str, *, thumbnail: bool) -> FileResponse:
    store = _store(request)
    with context.factory() as session:
        visible_incident(session, viewer, incident_id)
        row = session.get(IncidentPhoto, photo)
        if row is None or row.incident_id != incident_id:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such photo")
        path = store.file(incident_id, row, thumbnail=thumbnail)
        media_type = "image/jpeg" if thumbnail else row.media_type
    if not path.is_file():
        raise HTTPException(status.HTTP_404_NOT_FOUND, "this photo's file is missing")
    return FileResponse(path, media_type=media_type,
                        headers={"Cache-Control": "private, max-age=86400",
                                 "X-Content-Type-Options": "nosniff"})


@router.get("/api/v1/incidents/{incident_id}/photos/{photo}", tags=["incidents"],
            response_class=FileResponse)
def get_photo(incident_id: str, photo: PhotoId, request: Request, viewer: CurrentViewer,
              context: Context) -> FileResponse:
    return _serve(request, context, viewer, incident_id, photo, thumbnail=False)


@router.get("/api/v1/incidents/{incident_id}/photos/{photo}/thumbnail", tags=["incidents"],
            response_class=FileResponse)
def get_thumbnail(incident_id: str, photo: PhotoId, request: Request, viewer: CurrentViewer,
                  context: Context) -> FileResponse:
    return _serve(request, context, viewer, incident_id, photo, thumbnail=True)
