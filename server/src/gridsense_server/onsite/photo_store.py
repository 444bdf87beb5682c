"""Incident photos on disk (``<dir>/<incident>/<id>.<ext>`` and ``<id>.thumb.jpg``) with a row
each in ``incident_photos``. An id is a hash of the incident and the uploaded bytes, so the
same photo sent again (an offline queue's resend) is the same photo, stored once. Limits: a
count per incident and a total size; a full store refuses uploads rather than evict evidence.
Blocking: call from a worker thread.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..config import PhotosConfig
from ..db.onsite_models import IncidentPhoto
from ..workorders.states import Refused
from ..workorders.views import PHOTO_ID
from .photo_images import EXTENSIONS, Photo
from .refusals import PhotoRefused

THUMBNAIL_SUFFIX = ".thumb.jpg"


def photo_id(incident_id: str, data: bytes) -> str:
    return "ph" + hashlib.sha256(incident_id.encode() + b"\n" + data).hexdigest()[:24]


@dataclass(frozen=True, slots=True)
class StoredPhoto:
    id: str
    media_type: str
    bytes: int
    width: int
    height: int
    location_kept: bool
    new: bool  # False: this very photo was stored before (a resend)


class PhotoStore:
    def __init__(self, folder: Path, config: PhotosConfig) -> None:
        self.folder = folder
        self.config = config
        folder.mkdir(parents=True, exist_ok=True)

    def file(self, incident_id: str, row: IncidentPhoto, *, thumbnail: bool) -> Path:
        suffix = THUMBNAIL_SUFFIX if thumbnail else EXTENSIONS[row.media_type]
        return self.folder / incident_id / f"{row.id}{suffix}"

    def add(self, session: Session, incident_id: str, uploaded: bytes, photo: Photo,
            uploaded_by: str, now: datetime) -> StoredPhoto:
        """Store the prepared ``photo`` of the ``uploaded`` bytes, in the caller's transaction
        (the files are written first: a row never names a missing file)."""
        ident = photo_id(incident_id, uploaded)
        row = session.get(IncidentPhoto, ident)
        if row is None:
            self._check_room(session, incident_id, len(photo.data) + len(photo.thumbnail))
            row = IncidentPhoto(id=ident, incident_id=incident_id, uploaded_by=uploaded_by,
                                uploaded_at=now, media_type=photo.media_type,
                                bytes=len(photo.data), width=photo.width, height=photo.height,
                                location_kept=photo.location_kept)
            _write(self.file(incident_id, row, thumbnail=False), photo.data)
            _write(self.file(incident_id, row, thumbnail=True), photo.thumbnail)
            session.add(row)
            new = True
        else:
            new = False
        return StoredPhoto(row.id, row.media_type, row.bytes, row.width, row.height,
                           row.location_kept, new)

    def _check_room(self, session: Session, incident_id: str, size: int) -> None:
        count = session.scalar(select(func.count()).select_from(IncidentPhoto)
                               .where(IncidentPhoto.incident_id == incident_id)) or 0
        if count >= self.config.max_per_incident:
            raise PhotoRefused("photo_too_many", f"incident {incident_id} already has {count} "
                                                 f"photos (limit {self.config.max_per_incident})")
        total = session.scalar(select(func.coalesce(func.sum(IncidentPhoto.bytes), 0))) or 0
        if total + size > self.config.max_mb * 2**20:
            raise PhotoRefused("photo_store_full", f"the photo store is full "
                                                   f"({self.config.max_mb:g} MB, photos.max_mb)")


def check_attached(session: Session, incident_id: str, photos: list[str]) -> None:
    """Every uploaded-photo id an action names must be a photo of this incident."""
    ids = [p for p in photos if PHOTO_ID.fullmatch(p)]
    if not ids:
        return
    found = set(session.scalars(select(IncidentPhoto.id).where(
        IncidentPhoto.id.in_(ids), IncidentPhoto.incident_id == incident_id)))
    missing = [p for p in ids if p not in found]
    if missing:
        raise Refused(400, f"照片未上传到此事件 / photo(s) {', '.join(missing)} were not "
                           f"uploaded to incident {incident_id}")


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
