"""Enrollment over HTTP: the control room or an installer creates a gateway and gets its
one-time code (also as a QR code); the gateway enrolls with it (public, throttled per
address); a gateway is revoked. Every step is audited, every refused try too."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, HTTPException, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from gridsense_protocol.topics import ID_PATTERN

from ..audit import record, record_now
from ..auth.addresses import throttle_subject
from ..auth.throttle import Throttle
from ..config import ServerConfig
from ..db.enrollment_models import EnrolledGateway, EnrollmentCode
from ..db.models import Community, Grid
from ..enrollment import (
    Enroller,
    EnrollError,
    EnrollErrorKind,
    GatewayExists,
    Refused,
    format_code,
)
from ..enrollment.codes import code_hash, normalize
from ..enrollment.qr import qr_svg
from ..logs import kv
from ..registry.viewers import Viewer
from .deps import Context, CurrentViewer
from .installer_scope import MANAGING_ROLES
from .web_auth import address_of

log = logging.getLogger(__name__)
router = APIRouter(tags=["enrollment"])
ENROLL_SCOPE = "enroll"
CSR_MAX = 16_384  # a P-256 or RSA-4096 request is far smaller


@dataclass(frozen=True, slots=True)
class EnrollmentParts:
    """``app.state.enrollment``: what the routes need beyond the API context."""

    enroller: Enroller
    throttle: Throttle


class GatewayCreate(BaseModel):
    id: Annotated[str, Field(pattern=f"^{ID_PATTERN}$")]
    community: Annotated[str, Field(pattern=f"^{ID_PATTERN}$")]
    name: Annotated[str, Field(min_length=1, max_length=200)]
    location: Annotated[str, Field(max_length=200)] | None = None


class EnrollmentCodeView(BaseModel):
    gateway: str
    code: str  # shown once
    expires_at: datetime
    enroll_uri: str  # what the QR code carries
    qr_svg_url: str
    ca_sha256: str | None
    command: str  # what the installer types on the gateway


class EnrollRequest(BaseModel):
    code: Annotated[str, Field(min_length=1, max_length=64)]
    csr: Annotated[str, Field(max_length=CSR_MAX)] | None = None


class RevokeAnswer(BaseModel):
    gateway: str
    broker_account_removed: bool
    cert_serial: str | None


def make_enrollment(factory: sessionmaker[Session], config: ServerConfig) -> EnrollmentParts:
    """Raises EnrollError when enrollment.ca_dir is not a usable CA (a start-up error)."""
    server_url = config.enrollment.server_url or config.lifecycle.public_url
    host = urlsplit(server_url).hostname or ""
    if config.broker.admin_password_file is not None and (
            host == "localhost" or host.startswith("127.")):
        # Every code would send gateways to themselves: say so at start, not at the site.
        log.warning(kv("enrollment_url_loopback", server_url=server_url,
                       fix="set enrollment.server_url (or lifecycle.public_url)"))
    return EnrollmentParts(Enroller.from_config(config, factory),
                           Throttle(factory, config.auth.throttle, ENROLL_SCOPE))


def _parts(request: Request) -> EnrollmentParts:
    parts = getattr(request.app.state, "enrollment", None)
    if parts is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND,  # a feature this server does not offer
                            "本服务器未启用网关注册 / enrollment is not set up on this server")
    return parts


def _require_manager(session: Session, viewer: Viewer, community: str) -> None:
    """Control anywhere; an installer in a community one of whose grids it owns."""
    if viewer.role not in MANAGING_ROLES:
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            f"gateways are created by role control or installer "
                            f"(you are {viewer.role})")
    if session.get(Community, community) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no community {community!r}")
    if viewer.grids is not None and not set(session.scalars(
            select(Grid.id).where(Grid.community_id == community))) & viewer.grids:
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            f"community {community!r} is not one of yours")


def _managed_gateway(session: Session, viewer: Viewer, gateway_id: str) -> EnrolledGateway:
    row = session.get(EnrolledGateway, gateway_id)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no enrolled gateway {gateway_id!r}")
    _require_manager(session, viewer, row.community_id)
    return row


def _code_view(enroller: Enroller, gateway_id: str, code: str,
               expires_at: datetime) -> EnrollmentCodeView:
    shown = format_code(code)
    server = enroller.server_url
    fingerprint = enroller.ca_fingerprint
    command = f"gridsense-edge enroll --server {server} --code {shown}"
    if fingerprint:
        command += f" --ca-fingerprint {fingerprint}"
    return EnrollmentCodeView(
        gateway=gateway_id, code=shown, expires_at=expires_at,
        enroll_uri=enroller.enroll_uri(shown),
        qr_svg_url=f"/api/v1/gateways/{gateway_id}/enrollment.svg?code={shown}",
        ca_sha256=fingerprint, command=command)


@router.post("/api/v1/gateways", response_model=EnrollmentCodeView,
             status_code=status.HTTP_201_CREATED)
def create_gateway(body: GatewayCreate, viewer: CurrentViewer, context: Context,
                   request: Request) -> EnrollmentCodeView:
    enroller = _parts(request).enroller
    with context.factory.begin() as session:
        _require_manager(session, viewer, body.community)
        try:
            issued = enroller.store.create(session, body.id, body.community, body.name,
                                           body.location, viewer.username)
        except GatewayExists:
            raise HTTPException(status.HTTP_409_CONFLICT,
                                f"gateway {body.id!r} already exists") from None
        record(session, viewer.username, "gateway.create", body.id,
               {"community": body.community, "name": body.name, "location": body.location,
                "code_expires_at": issued.expires_at}, address_of(request))
    return _code_view(enroller, body.id, issued.code, issued.expires_at)


@router.post("/api/v1/gateways/{gateway_id}/code", response_model=EnrollmentCodeView)
def new_enrollment_code(gateway_id: str, viewer: CurrentViewer, context: Context,
                        request: Request) -> EnrollmentCodeView:
    """A fresh code (re-enrollment, or a lost one); earlier codes stop working."""
    enroller = _parts(request).enroller
    with context.factory.begin() as session:
        _managed_gateway(session, viewer, gateway_id)
        issued = enroller.store.issue(session, gateway_id)
        record(session, viewer.username, "gateway.code", gateway_id,
               {"code_expires_at": issued.expires_at}, address_of(request))
    return _code_view(enroller, gateway_id, issued.code, issued.expires_at)


@router.get("/api/v1/gateways/{gateway_id}/enrollment.svg",
            response_class=Response, responses={200: {"content": {"image/svg+xml": {}}}})
def enrollment_qr(gateway_id: str, code: str, viewer: CurrentViewer, context: Context,
                  request: Request) -> Response:
    """The QR code of a live code of this gateway (the server keeps only hashes, so the
    caller names the code it was given)."""
    enroller = _parts(request).enroller
    typed = normalize(code)
    with context.factory() as session:
        _managed_gateway(session, viewer, gateway_id)
        row = None if typed is None else session.get(EnrollmentCode, code_hash(typed))
    if (row is None or row.gateway_id != gateway_id or row.used_at is not None
            or row.invalidated_at is not None):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such live code for this gateway")
    assert typed is not None
    svg = qr_svg(enroller.enroll_uri(format_code(typed)), f"gridsense {gateway_id}")
    return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": "no-store"})


@router.get("/api/v1/enroll/ca.crt", response_class=Response,
            responses={200: {"content": {"application/x-pem-file": {}}}})
def enrollment_ca(request: Request) -> Response:
    """Public: the deployment CA, for a gateway's first contact. Not trusted for what it
    says: the gateway checks its SHA-256 against the fingerprint the installer brought."""
    ca = _parts(request).enroller.ca
    if ca is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "this server has no deployment CA")
    return Response(ca.cert_file.read_bytes(), media_type="application/x-pem-file")


# A server without enrollment set up does not offer it (404, like any absent feature); only a
# broker that refuses or cannot be reached is the server's own trouble (503).
_ENROLL_FAILURE_STATUS = {
    EnrollErrorKind.BAD_REQUEST: status.HTTP_400_BAD_REQUEST,
    EnrollErrorKind.NOT_CONFIGURED: status.HTTP_404_NOT_FOUND,
    EnrollErrorKind.BROKER: status.HTTP_503_SERVICE_UNAVAILABLE,
}


@router.post("/api/v1/enroll")
async def enroll(body: EnrollRequest, request: Request, context: Context) -> dict[str, Any]:
    """Public: the gateway proves itself with the code. 429 while its address is throttled;
    403 wrong code; 410 used, expired or replaced; 400 bad certificate request; 404 enrollment
    not set up on this server; 503 broker."""
    parts = _parts(request)
    address = address_of(request)
    subjects = [throttle_subject(address)]
    blocked = await run_in_threadpool(parts.throttle.blocked, subjects)
    if blocked is not None:
        context.counters.inc("enroll.throttled")
        await run_in_threadpool(record_now, context.factory, "gateway:?", "gateway.enroll_blocked",
                                "", {"retry_after_s": blocked.retry_after_s}, address)
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS,
                            {"error": "throttled", "message": "尝试过多，请稍后再试 / too many "
                             f"tries; wait {blocked.retry_after_s} s"},
                            headers={"Retry-After": str(blocked.retry_after_s)})
    try:
        enrolled = await run_in_threadpool(parts.enroller.enroll, body.code, body.csr, address)
    except Refused as refused:
        context.counters.inc("enroll.refused")
        await run_in_threadpool(parts.throttle.failure, subjects)
        await run_in_threadpool(record_now, context.factory,
                                f"gateway:{refused.gateway_id or '?'}", "gateway.enroll_refused",
                                refused.gateway_id or "", {"reason": refused.kind.value}, address)
        code = (status.HTTP_403_FORBIDDEN if refused.kind.value == "wrong"
                else status.HTTP_410_GONE)
        raise HTTPException(code, {"error": refused.kind.value, "message": str(refused)}
                            ) from None
    except EnrollError as failed:
        context.counters.inc("enroll.failed")
        await run_in_threadpool(record_now, context.factory, "gateway:?", "gateway.enroll_failed",
                                "", {"reason": failed.kind.value, "detail": str(failed)},
                                address)
        raise HTTPException(_ENROLL_FAILURE_STATUS[failed.kind],
                            {"error": failed.kind.value, "message": str(failed)}) from None
    context.counters.inc("enroll.enrolled")
    return enrolled.answer


@router.post("/api/v1/gateways/{gateway_id}/revoke", response_model=RevokeAnswer)
def revoke_gateway(gateway_id: str, viewer: CurrentViewer, context: Context,
                   request: Request) -> RevokeAnswer:
    """The broker account goes first (the broker drops the live connection), then the codes
    and the certificate: a failure at the broker leaves the gateway as it was, to retry."""
    enroller = _parts(request).enroller
    with context.factory() as session:
        _managed_gateway(session, viewer, gateway_id)
    try:
        removed = enroller.revoke_account(gateway_id)
    except EnrollError as failed:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(failed)) from None
    with context.factory.begin() as session:
        serial = enroller.store.revoke(session, gateway_id)
        record(session, viewer.username, "gateway.revoke", gateway_id,
               {"broker_account_removed": removed, "cert_serial": serial},
               address_of(request))
    return RevokeAnswer(gateway=gateway_id, broker_account_removed=removed, cert_serial=serial)
