"""Commissioning over HTTP: start a run for a gateway (a drill page to the installer), read
its report as JSON or as a printable page, acknowledge the drill; save the installer's draft
configuration (registering its points) and read it back. Every change is audited."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gridsense_protocol import utc_now
from gridsense_protocol.topics import ID_PATTERN

from ..audit import record
from ..commissioning import CommissionError, Commissioning
from ..commissioning.draft import DraftError, InstallationBody, save_draft, stored_draft
from ..commissioning.html import CSS_FILE, render
from ..config import DisplayConfig
from ..db.commissioning_models import CommissioningRun, InstallationDraft
from ..db.enrollment_models import EnrolledGateway
from ..db.models import Gateway, Point
from ..db.page_reads import mark_read
from ..registry.viewers import Viewer
from ..remote_config.validate import InvalidConfig
from ..remote_config.versions import Unchanged, create_version, latest
from .deps import Context, CurrentViewer
from .installer_scope import MANAGING_ROLES, require_gateway_manager
from .web_auth import address_of

router = APIRouter(tags=["commissioning"])
ACK_CHANNEL = "report"  # the drill acknowledged from the report page, not a page's link
# Path parameters are checked before any query (PostgreSQL refuses NUL even to compare).
GatewayId = Annotated[str, Path(pattern=f"^{ID_PATTERN}$")]
RunId = Annotated[str, Path(pattern="^[0-9A-HJKMNP-TV-Z]{26}$")]


class CommissionRequest(BaseModel):
    # Whom the drill pages: the caller by default; the control room may name an installer.
    installer: Annotated[str, Field(pattern=f"^{ID_PATTERN}$")] | None = None


class RunSummary(BaseModel):
    id: str
    gateway: str
    installer: str
    started_by: str
    started_at: datetime
    drill_outcome: str  # pending | reached | acknowledged | unreached
    verdict: str  # pending | green | red (as last reported)

    @classmethod
    def of(cls, run: CommissioningRun) -> RunSummary:
        return cls(id=run.id, gateway=run.gateway, installer=run.installer,
                   started_by=run.started_by, started_at=run.started_at,
                   drill_outcome=run.drill_outcome, verdict=run.verdict)


def _service(request: Request) -> Commissioning:
    service = getattr(request.app.state, "commissioning", None)
    if service is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND,
                            "本服务器未启用调试 / commissioning is not set up on this server")
    return service


def _failed(error: CommissionError | DraftError) -> HTTPException:
    return HTTPException(error.status, str(error))


def _check_gateway(context: Context, viewer: Viewer, gateway: str) -> None:
    with context.factory() as session:
        require_gateway_manager(session, viewer, gateway)


async def _report(request: Request, context: Context, viewer: Viewer,
                  run_id: str) -> dict[str, Any]:
    service = _service(request)
    try:
        gateway = await run_in_threadpool(service.gateway_of, run_id)
        await run_in_threadpool(_check_gateway, context, viewer, gateway)
        return await service.report(run_id)
    except CommissionError as error:
        raise _failed(error) from None


@router.get("/api/v1/commissioning/report.css", include_in_schema=False)
def report_css() -> Response:
    return Response(CSS_FILE.read_bytes(), media_type="text/css",
                    headers={"Cache-Control": "no-cache"})


@router.post("/api/v1/gateways/{gateway}/commissioning", status_code=status.HTTP_201_CREATED)
async def start_commissioning(gateway: GatewayId, body: CommissionRequest,
                              viewer: CurrentViewer, context: Context,
                              request: Request) -> dict[str, Any]:
    """Start a run: the drill goes to the installer now; the report follows it (201 with the
    first report, its verdict ``pending`` until the drill is delivered or times out)."""
    service = _service(request)
    await run_in_threadpool(_check_gateway, context, viewer, gateway)
    installer = body.installer or viewer.username
    if installer != viewer.username and viewer.role != "control":
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            "只有监控中心可指定其他安装人员 / only the control room pages "
                            "someone else")
    try:
        run_id = await run_in_threadpool(service.start, gateway, viewer.username, installer,
                                         address_of(request))
    except CommissionError as error:
        raise _failed(error) from None
    context.counters.inc("api.commissioning_started")
    return await _report(request, context, viewer, run_id)


@router.get("/api/v1/gateways/{gateway}/commissioning", response_model=list[RunSummary])
def list_runs(gateway: GatewayId, viewer: CurrentViewer, context: Context,
              request: Request) -> list[RunSummary]:
    """The gateway's latest runs, newest first."""
    service = _service(request)
    _check_gateway(context, viewer, gateway)
    return [RunSummary.of(run) for run in service.latest(gateway)]


@router.get("/api/v1/commissioning/{run_id}")
async def commissioning_report(run_id: RunId, viewer: CurrentViewer, context: Context,
                               request: Request) -> dict[str, Any]:
    """The report: each point with its first reading, the drill's delivery and round trip,
    the verdict with its reasons."""
    return await _report(request, context, viewer, run_id)


@router.get("/api/v1/commissioning/{run_id}/report.html", response_class=HTMLResponse)
async def commissioning_report_page(run_id: RunId, viewer: CurrentViewer, context: Context,
                                    request: Request) -> HTMLResponse:
    """The report as a printable page (Chinese first, English beside it)."""
    report = await _report(request, context, viewer, run_id)
    display: DisplayConfig = getattr(request.app.state, "display", DisplayConfig())
    return HTMLResponse(render(report, display.timezone), headers={"Cache-Control": "no-store"})


def _acknowledge(context: Context, viewer: Viewer, run_id: str, address: str) -> None:
    with context.factory.begin() as session:
        run = session.get(CommissioningRun, run_id)
        if run is None or run.installer != viewer.username or run.drill_incident_id is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND,
                                "没有发给您的演练 / no drill of yours with this run id")
        mark_read(session, run.drill_incident_id, viewer.username, ACK_CHANNEL, utc_now())
        record(session, viewer.username, "commissioning.ack", run.gateway, {"run": run.id},
               address)


@router.post("/api/v1/commissioning/{run_id}/ack")
async def acknowledge_drill(run_id: RunId, viewer: CurrentViewer, context: Context,
                            request: Request) -> dict[str, Any]:
    """The paged installer says "received" (opening the page's link counts as well)."""
    _service(request)
    await run_in_threadpool(_acknowledge, context, viewer, run_id, address_of(request))
    return await _report(request, context, viewer, run_id)


class InstallableGateway(BaseModel):
    id: str
    name: str | None  # as created for enrollment; None for a gateway set up by hand
    community: str | None
    enrollment: str | None  # pending | enrolled | revoked; None: not enrolled here
    online: bool | None  # None: never heard from
    points: int  # registered points
    saved: bool  # a draft configuration was saved


MAX_GATEWAYS = 1000


def _installable(context: Context, viewer: Viewer) -> list[InstallableGateway]:
    with context.factory() as session:
        enrolled = {g.id: g for g in session.scalars(
            select(EnrolledGateway).order_by(EnrolledGateway.id).limit(MAX_GATEWAYS))}
        seen = {g.id: g.state for g in session.scalars(
            select(Gateway).order_by(Gateway.id).limit(MAX_GATEWAYS))}
        points = dict(session.execute(select(Point.gateway, func.count()).group_by(
            Point.gateway).limit(MAX_GATEWAYS)).all())
        saved = set(session.scalars(select(InstallationDraft.gateway).limit(MAX_GATEWAYS)))
        found = []
        for gateway in sorted(set(enrolled) | set(seen) | set(points))[:MAX_GATEWAYS]:
            try:
                require_gateway_manager(session, viewer, gateway)
            except HTTPException:
                continue
            row = enrolled.get(gateway)
            found.append(InstallableGateway(
                id=gateway, name=row.name if row else None,
                community=row.community_id if row else None,
                enrollment=row.state if row else None,
                online=None if gateway not in seen else seen[gateway] == "online",
                points=points.get(gateway, 0), saved=gateway in saved))
        return found


@router.get("/api/v1/installation/gateways", response_model=list[InstallableGateway])
async def installable_gateways(viewer: CurrentViewer,
                               context: Context) -> list[InstallableGateway]:
    """The gateways the caller may set up: created for enrollment in its communities, or with
    points in its grids (the control room: all of them)."""
    if viewer.role not in MANAGING_ROLES:
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            f"安装页面仅供监控中心和安装人员 / for roles control and installer "
                            f"(you are {viewer.role})")
    return await run_in_threadpool(_installable, context, viewer)


def _save(context: Context, viewer: Viewer, gateway: str, body: InstallationBody,
          address: str) -> dict[str, Any]:
    with context.factory.begin() as session:
        require_gateway_manager(session, viewer, gateway)
        saved = save_draft(session, gateway, body, viewer.grids, viewer.username, utc_now())
        record(session, viewer.username, "gateway.installation", gateway,
               {"points": [a.id for a in body.points], "registry": saved["registry"]}, address)
        saved["pushed"] = _push_to_gateway(session, viewer, gateway, saved["config"], address)
    return saved


def _push_to_gateway(session: Session, viewer: Viewer, gateway: str, document: dict[str, Any],
                     address: str) -> dict[str, Any]:
    """A whole configuration (what ``discover --config`` drafts from the running one) becomes
    the gateway's next remote version, so it runs without a file copied by hand; the gateway
    applies it and rolls back by itself if it does not come up healthy."""
    if not isinstance(document.get("mqtt"), dict):
        return {"version": None, "reason": "草稿没有 mqtt 部分，不是完整配置：只保存，不下发 / "
                                           "the draft has no mqtt section: not a whole "
                                           "configuration, kept for the gateway's own file"}
    try:
        row = create_version(session, gateway, document, viewer.username,
                             f"安装调试 / installation by {viewer.username}", address)
    except InvalidConfig as error:
        return {"version": None, "reason": str(error)[:500]}
    except Unchanged:
        current = latest(session, gateway)
        return {"version": current.version if current else None, "reason": "unchanged"}
    return {"version": row.version, "reason": None}


@router.put("/api/v1/gateways/{gateway}/installation")
async def save_installation(gateway: GatewayId, body: InstallationBody,
                            viewer: CurrentViewer, context: Context,
                            request: Request) -> dict[str, Any]:
    """Save the draft configuration: each assigned device's point is registered (name, grid,
    place) and the configuration kept with its thresholds as rules. 422 names the wrong field,
    403 a grid not yours, 409 a point of another gateway."""
    try:
        saved = await run_in_threadpool(_save, context, viewer, gateway, body,
                                        address_of(request))
    except DraftError as error:
        raise _failed(error) from None
    context.counters.inc("api.installations_saved")
    pusher = getattr(request.app.state, "config_pusher", None)
    if pusher is not None and saved["pushed"]["version"] is not None:
        pusher.wake()
    return saved


def _stored(context: Context, viewer: Viewer, gateway: str) -> dict[str, Any]:
    with context.factory() as session:
        require_gateway_manager(session, viewer, gateway)
        row = stored_draft(session, gateway)
        points = [{"id": p.id, "name": p.name, "grid": p.grid_id, "location": p.location}
                  for p in session.scalars(select(Point).where(Point.gateway == gateway)
                                           .order_by(Point.id))]
        return {"gateway": gateway, "config": row.document if row is not None else None,
                "saved_by": row.saved_by if row is not None else None,
                "saved_at": row.saved_at if row is not None else None, "points": points}


@router.get("/api/v1/gateways/{gateway}/installation")
async def get_installation(gateway: GatewayId, viewer: CurrentViewer,
                           context: Context) -> dict[str, Any]:
    """The configuration last saved for the gateway (``config`` null when none was) and its
    registered points."""
    return await run_in_threadpool(_stored, context, viewer, gateway)
