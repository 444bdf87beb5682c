"""Access control over HTTP: the access log, and residents' credentials per community.

The log is scoped like incidents (a worker sees the doors of their grids). Managing
credentials needs the ``control`` role (every community) or ``leader`` (the communities of the
leader's grids); a refusal is a 403 saying why. Card numbers and PINs go in, never out
(a credential shows its card's last four digits and whether it has a PIN).
"""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, HTTPException, Query, Request, status
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..access_control import credentials as creds
from ..access_control.log import AccessLogService, AccessQuery
from ..access_control.sync import CredentialSync
from ..audit import record
from ..db.access_models import AccessLogEntry
from ..db.models import Grid
from ..passes.log_names import PassNames, pass_names
from ..registry.viewers import Viewer
from .deps import Context, CurrentViewer
from .web_auth import address_of

router = APIRouter(tags=["access"])

MANAGING_ROLES = frozenset({"control", "leader"})


class AccessEventView(BaseModel):
    event_id: str
    ts: datetime
    gateway: str
    point: str
    grid: str | None
    door: str
    result: str
    method: str
    credential: str | None
    card: str | None  # keyed hash, never the number
    reason: str | None
    offline: bool
    backfill: bool
    pass_id: str | None = None
    pass_kind: str | None = None  # resident | visitor
    visitor: str | None = None  # the visitor's name
    inviter: str | None = None  # the inviting resident's credential id
    inviter_name: str | None = None

    @classmethod
    def of(cls, row: AccessLogEntry, names: dict[str, PassNames] | None = None
           ) -> AccessEventView:
        found = (names or {}).get(row.pass_id or "")
        return cls(event_id=row.event_id, ts=row.ts, gateway=row.gateway, point=row.point_id,
                   grid=row.grid_id, door=row.door, result=row.result, method=row.method,
                   credential=row.credential_id, card=row.card_hash, reason=row.reason,
                   offline=row.offline, backfill=row.backfill, pass_id=row.pass_id,
                   pass_kind=found and found.kind, visitor=found and found.visitor,
                   inviter=found and found.inviter, inviter_name=found and found.inviter_name)


class ImportResult(BaseModel):
    community: str
    imported: int
    version: int


def _service(request: Request) -> AccessLogService:
    service = getattr(request.app.state, "access_log", None)
    if service is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "access log not configured")
    return service


def _changed(request: Request, community: str) -> None:
    sync: CredentialSync | None = getattr(request.app.state, "access_sync", None)
    if sync is not None:
        sync.changed(community)


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise HTTPException(422, "since/until need a time zone (e.g. ...Z)")
    return value


@router.get("/api/v1/access-events", response_model=list[AccessEventView])
def list_access_events(
    request: Request,
    viewer: CurrentViewer,
    context: Context,
    door: Annotated[str | None, Query(max_length=64)] = None,
    credential: Annotated[str | None, Query(max_length=64)] = None,
    gateway: Annotated[str | None, Query(max_length=64)] = None,
    result: Annotated[str | None, Query(max_length=32)] = None,
    since: Annotated[datetime | None, Query(description="at or after (ISO time)")] = None,
    until: Annotated[datetime | None, Query(description="before (ISO time)")] = None,
    limit: Annotated[int, Query(ge=1, le=10000)] = 200,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> Any:
    """Newest first. ``format=csv`` is what ``models/access_anomaly`` retrains from."""
    service = _service(request)
    query = AccessQuery(door=door, credential=credential, gateway=gateway, result=result,
                        since=_aware(since), until=_aware(until), grids=viewer.grids,
                        limit=limit)
    with context.factory() as session:
        found = service.query(session, query)
        names = pass_names(session, {r.pass_id for r in found if r.pass_id})
        rows = [AccessEventView.of(r, names) for r in found]
    if format == "json":
        return rows
    out = io.StringIO()
    fields = list(AccessEventView.model_fields)
    writer = csv.DictWriter(out, fieldnames=fields)
    writer.writeheader()
    for row in rows:
        document = row.model_dump(mode="json")
        writer.writerow({k: ("" if v is None else v) for k, v in document.items()})
    return Response(out.getvalue(), media_type="text/csv")


def managed_communities(session: Session, viewer: Viewer) -> frozenset[str] | None:
    """Communities whose credentials ``viewer`` may manage; None: all of them."""
    if viewer.role not in MANAGING_ROLES:
        return frozenset()
    if viewer.grids is None:
        return None
    return frozenset(c for c in session.scalars(
        select(Grid.community_id).distinct().where(Grid.id.in_(viewer.grids))) if c)


def _manager(session: Session, viewer: Viewer, community: str) -> None:
    """403 with the reason unless ``viewer`` may manage ``community``'s credentials."""
    if viewer.role not in MANAGING_ROLES:
        roles = " or ".join(sorted(MANAGING_ROLES))
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            f"managing credentials needs role {roles} (you are {viewer.role})")
    allowed = managed_communities(session, viewer)
    if allowed is not None and community not in allowed:
        mine = ", ".join(sorted(allowed)) or "none"
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            f"community {community!r} is not one of your grids' communities "
                            f"({mine})")


def _check(context: Any, viewer: Viewer, community: str) -> None:
    with context.factory() as session:
        _manager(session, viewer, community)


@router.get("/api/v1/communities/{community}/credentials",
            response_model=list[creds.CredentialView])
def list_credentials(community: str, viewer: CurrentViewer, context: Context,
                     revoked: bool = False,
                     limit: Annotated[int, Query(ge=1, le=10000)] = 1000,
                     ) -> list[creds.CredentialView]:
    with context.factory() as session:
        _manager(session, viewer, community)
        rows = creds.list_credentials(session, community, revoked, limit)
        return [creds.CredentialView.of(r) for r in rows]


@router.post("/api/v1/communities/{community}/credentials",
             response_model=creds.CredentialView, status_code=201)
def put_credential(community: str, body: creds.CredentialInput, request: Request,
                   viewer: CurrentViewer, context: Context) -> creds.CredentialView:
    """Create or replace one credential (same id: replaced, and un-revoked)."""
    _check(context, viewer, community)
    try:
        with context.factory.begin() as session:
            creds.upsert(session, community, [body])
            record(session, viewer.username, "credential.put", body.id,
                   {"community": community}, address_of(request))
    except LookupError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except creds.CredentialProblem as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    _changed(request, community)
    with context.factory() as session:
        row = session.get(creds.Credential, body.id)
        assert row is not None
        return creds.CredentialView.of(row)


@router.delete("/api/v1/credentials/{credential_id}", response_model=creds.CredentialView)
def revoke_credential(credential_id: str, request: Request, viewer: CurrentViewer,
                      context: Context) -> creds.CredentialView:
    """Revoke: gateways online refuse the card within seconds (the change is pushed now)."""
    try:
        with context.factory.begin() as session:
            found = session.get(creds.Credential, credential_id)
            if found is None:
                raise LookupError(f"no credential {credential_id!r}")
            _manager(session, viewer, found.community_id)
            community, _ = creds.revoke(session, credential_id)
            record(session, viewer.username, "credential.revoke", credential_id,
                   {"community": community}, address_of(request))
    except LookupError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    _changed(request, community)
    with context.factory() as session:
        row = session.get(creds.Credential, credential_id)
        assert row is not None
        return creds.CredentialView.of(row)


@router.post("/api/v1/communities/{community}/credentials/import", response_model=ImportResult)
def import_credentials(
    community: str, request: Request, viewer: CurrentViewer, context: Context,
    body: Annotated[str, Body(media_type="text/csv",
                              description="header: " + ",".join(creds.CSV_COLUMNS))],
) -> ImportResult:
    """All or nothing; a refusal lists ``line N: field: problem`` (never the values)."""
    _check(context, viewer, community)
    try:
        items = creds.parse_csv(body)
        with context.factory.begin() as session:
            version = creds.upsert(session, community, items)
            record(session, viewer.username, "credential.import", community,
                   {"credentials": len(items), "version": version}, address_of(request))
    except creds.CredentialProblem as exc:
        raise HTTPException(422, {"problems": exc.problems[:100]}) from None
    except LookupError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    _changed(request, community)
    return ImportResult(community=community, imported=len(items), version=version)
