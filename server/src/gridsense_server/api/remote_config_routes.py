"""Gateways' remote configuration over HTTP: desired against running, a new version
(validated before anything is sent), the history, a diff between two versions.

Reading needs the ``control`` or ``leader`` role; a new version needs ``control`` (a
gateway's configuration can cut it off, so only the control room changes it).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request, status
from pydantic import BaseModel, Field

from gridsense_protocol.topics import ID_PATTERN

from ..registry.viewers import Viewer
from ..remote_config import versions
from ..remote_config.push import ConfigPusher
from ..remote_config.validate import InvalidConfig
from .deps import Context, CurrentViewer
from .web_auth import address_of

router = APIRouter(tags=["remote config"])

READING_ROLES = frozenset({"control", "leader"})
WRITING_ROLES = frozenset({"control"})
GatewayId = Annotated[str, Path(pattern=f"^{ID_PATTERN}$")]


class GatewayConfigView(BaseModel):
    status: versions.StatusView
    document: dict[str, Any] | None  # the desired version's
    # What the gateway runs, when it is a version of ours: after a rollback, the base to edit
    # (the desired one is the version that failed).
    running_document: dict[str, Any] | None = None


class NewVersion(BaseModel):
    document: dict[str, Any]
    reason: Annotated[str, Field(min_length=1, max_length=500)]


class NewVersionAnswer(BaseModel):
    gateway: str
    version: int
    hash: str


class HistoryView(BaseModel):
    versions: list[versions.VersionView]
    applies: list[versions.ApplyView]


def _allowed(viewer: Viewer, roles: frozenset[str]) -> None:
    if viewer.role not in roles:
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            f"needs role {' or '.join(sorted(roles))} (you are {viewer.role})")


@router.get("/api/v1/gateways/{gateway}/config", response_model=GatewayConfigView)
def get_config(gateway: GatewayId, viewer: CurrentViewer, context: Context) -> GatewayConfigView:
    _allowed(viewer, READING_ROLES)
    with context.factory() as session:
        row = versions.latest(session, gateway)
        status_view = versions.status(session, gateway)
        running = None
        if status_view.running_version:
            try:
                running = versions.get_version(session, gateway,
                                               status_view.running_version).document
            except LookupError:
                running = None
        return GatewayConfigView(status=status_view, running_document=running,
                                 document=row.document if row is not None else None)


@router.post("/api/v1/gateways/{gateway}/config", response_model=NewVersionAnswer,
             status_code=201)
def put_config(gateway: GatewayId, body: NewVersion, request: Request, viewer: CurrentViewer,
               context: Context) -> NewVersionAnswer:
    """A new desired version; 422 naming each problem when the gateway's schema refuses it,
    409 when it is the current version again. It is pushed within seconds."""
    _allowed(viewer, WRITING_ROLES)
    try:
        with context.factory.begin() as session:
            row = versions.create_version(session, gateway, body.document, viewer.username,
                                          body.reason, address_of(request))
            answer = NewVersionAnswer(gateway=gateway, version=row.version, hash=row.hash)
    except InvalidConfig as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY,
                            {"code": "config_invalid", "problems": exc.problems}) from None
    except versions.Unchanged as exc:
        raise HTTPException(status.HTTP_409_CONFLICT,
                            {"code": "config_unchanged", "message": str(exc)}) from None
    pusher: ConfigPusher | None = getattr(request.app.state, "config_pusher", None)
    if pusher is not None:
        pusher.wake()
    return answer


@router.get("/api/v1/gateways/{gateway}/config/history", response_model=HistoryView)
def get_history(gateway: GatewayId, viewer: CurrentViewer, context: Context,
                limit: Annotated[int, Query(ge=1, le=versions.HISTORY_MAX)] = 100,
                ) -> HistoryView:
    _allowed(viewer, READING_ROLES)
    with context.factory() as session:
        kept, applies = versions.history(session, gateway, limit)
    return HistoryView(versions=kept, applies=applies)


@router.get("/api/v1/gateways/{gateway}/config/diff", response_model=list[str])
def get_diff(gateway: GatewayId, viewer: CurrentViewer, context: Context,
             old: Annotated[int, Query(ge=1)], new: Annotated[int, Query(ge=1)]) -> list[str]:
    """Unified diff, as sorted YAML, from version ``old`` to version ``new``."""
    _allowed(viewer, READING_ROLES)
    with context.factory() as session:
        try:
            before = versions.get_version(session, gateway, old).document
            after = versions.get_version(session, gateway, new).document
        except LookupError as exc:
            raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    return versions.diff(before, after, f"v{old}", f"v{new}")
