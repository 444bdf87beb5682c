"""Statistics for the control room, as JSON or one table as CSV, scoped by the caller's grids
(computed in workorders/stats.py)."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request, Response

from gridsense_protocol import utc_now

from ..config import DisplayConfig, LifecycleConfig
from ..db.models import Incident
from ..registry.grids import with_descendants
from ..registry.viewers import Viewer
from ..workorders.stats import TooManyIncidents, statistics
from .deps import Context, CurrentViewer
from .incident_routes import visible_query

router = APIRouter()
DEFAULT_RANGE = timedelta(days=30)
MAX_RANGE = timedelta(days=400)
Table = Literal["per_day", "per_day_totals", "per_grid", "per_person", "busiest_points"]
Since = Annotated[datetime | None, Query(description="opened at or after; default until - 30 d")]
Until = Annotated[datetime | None, Query(description="opened before; default now")]
GridFilter = Annotated[str | None, Query(description="a grid and its micro-grids")]
TypeFilter = Annotated[str | None, Query(alias="type", description="one incident type",
                                         pattern="^[a-z][a-z0-9_]{0,63}$")]


def _compute(context: Context, request: Request, viewer: Viewer, since: datetime | None,
             until: datetime | None, grid: str | None, type_: str | None) -> dict[str, Any]:
    for name, bound in (("since", since), ("until", until)):
        if bound is not None and bound.tzinfo is None:
            raise HTTPException(422, f"{name} 需要带时区 / {name} needs a time zone (e.g. ...Z)")
    now = utc_now()
    until = until or now
    since = since or until - DEFAULT_RANGE
    if not since < until <= since + MAX_RANGE:
        raise HTTPException(422, f"since 须早于 until，且相距不超过 {MAX_RANGE.days} 天 / since "
                                 f"must be before until, at most {MAX_RANGE.days} days apart")
    actions = getattr(request.app.state, "incident_actions", None)
    lifecycle: LifecycleConfig = actions.config if actions is not None else LifecycleConfig()
    display: DisplayConfig = getattr(request.app.state, "display", DisplayConfig())
    query = visible_query(viewer).where(Incident.opened_at >= since, Incident.opened_at < until)
    if type_ is not None:
        query = query.where(Incident.type == type_)
    with context.factory() as session:
        if grid is not None:
            query = query.where(Incident.grid_id.in_(sorted(with_descendants(session, {grid}))))
        try:
            result = statistics(session, query.order_by(Incident.opened_at), lifecycle.sla,
                                display.timezone, now, since, until)
        except TooManyIncidents as exc:
            raise HTTPException(422, str(exc)) from None
    context.counters.inc("api.stats_served")
    return {"since": since, "until": until, "timezone": display.timezone, **result}


@router.get("/api/v1/stats", tags=["stats"])
def stats(viewer: CurrentViewer, context: Context, request: Request, since: Since = None,
          until: Until = None, grid: GridFilter = None,
          type_: TypeFilter = None) -> dict[str, Any]:
    """Incidents per day by type (days in the display zone), time to accept and to complete
    (mean, median, 90th percentile) per grid and per person against the SLA targets, the share
    that missed them per grid, person and day, the busiest points."""
    return _compute(context, request, viewer, since, until, grid, type_)


@router.get("/api/v1/stats.csv", tags=["stats"], response_class=Response,
            responses={200: {"content": {"text/csv": {}}}})
def stats_csv(viewer: CurrentViewer, context: Context, request: Request,
              table: Annotated[Table, Query(description="which table")] = "per_grid",
              since: Since = None, until: Until = None, grid: GridFilter = None,
              type_: TypeFilter = None) -> Response:
    """One table of /api/v1/stats as CSV (UTF-8 with a BOM, so spreadsheet programs read the
    Chinese names right)."""
    rows: list[dict[str, Any]] = _compute(context, request, viewer, since, until, grid,
                                          type_)[table]
    out = io.StringIO()
    out.write("\ufeff")
    if rows:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="gridsense-{table}.csv"'})

