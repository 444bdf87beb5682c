"""A point's time series for charts: downsampled on the server, scoped by the caller's grids.

404 alike for an unknown point and one in a grid the caller does not see (no probing for ids);
503 when the time-series store does not answer.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, status
from pydantic import BaseModel

from gridsense_protocol import utc_now

from ..db.models import Point
from ..registry.viewers import Viewer
from ..timeseries.reader import MAX_BUCKETS, QueryFailed, SeriesReader, choose_step
from .deps import Context, CurrentViewer

router = APIRouter()

MAX_RANGE = timedelta(days=400)
DEFAULT_RANGE = timedelta(hours=24)
DEFAULT_FIELD = "temperature"


class SeriesPoint(BaseModel):
    t: datetime  # the bucket's start (UTC)
    mean: float
    min: float
    max: float
    count: int  # readings in the bucket


class SeriesView(BaseModel):
    point: str
    field: str  # the measurement (the reading's metric): temperature, humidity, ...
    start: datetime
    end: datetime
    step_s: int  # the bucket width used (the requested step, or coarser to stay within limit)
    limit: int  # the most buckets a series carries
    points: list[SeriesPoint]  # non-empty buckets, oldest first


def _reader(request: Request) -> SeriesReader:
    reader = getattr(request.app.state, "series_reader", None)
    if reader is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE,
                            "时序库未配置 / no time-series reader configured")
    return reader


def _visible_point(context: Context, viewer: Viewer, point_id: str) -> None:
    with context.factory() as session:
        point = session.get(Point, point_id)
        if point is None or not viewer.sees_grid(point.grid_id):
            raise HTTPException(status.HTTP_404_NOT_FOUND,
                                f"没有该测点 / no such point: {point_id}")


def _bounds(start: datetime | None, end: datetime | None) -> tuple[datetime, datetime]:
    for name, value in (("from", start), ("to", end)):
        if value is not None and value.tzinfo is None:
            raise HTTPException(422, f"{name} 需要带时区 / {name} needs a time zone (e.g. ...Z)")
    end = end or utc_now()
    start = start or end - DEFAULT_RANGE
    if start >= end:
        raise HTTPException(422, "from 必须早于 to / from must be before to")
    if end - start > MAX_RANGE:
        raise HTTPException(422, f"时间范围最长 {MAX_RANGE.days} 天 / the range is at most "
                                 f"{MAX_RANGE.days} days")
    return start, end


@router.get("/api/v1/points/{point_id}/series", response_model=SeriesView, tags=["series"],
            responses={404: {"description": "no such point, or not in the caller's grids"},
                       503: {"description": "the time-series store does not answer"}})
async def point_series(
    point_id: str,
    viewer: CurrentViewer,
    context: Context,
    request: Request,
    start: Annotated[datetime | None, Query(alias="from",
                                            description="ISO time with zone; default to - 24 h")]
    = None,
    end: Annotated[datetime | None, Query(alias="to", description="ISO time; default now")]
    = None,
    step: Annotated[int | None, Query(ge=1, le=604800,
                                      description="bucket seconds; coarsened to the limit")]
    = None,
    field: Annotated[str, Query(pattern="^[a-z][a-z0-9_]{0,47}$")] = DEFAULT_FIELD,
) -> SeriesView:
    """Mean, min and max per bucket, at most ~1,000 buckets whatever the range."""
    reader = _reader(request)
    start, end = _bounds(start, end)
    await asyncio.to_thread(_visible_point, context, viewer, point_id)
    step_s = choose_step(start, end, step)
    try:
        buckets = await reader.buckets(field, point_id, start, end, step_s)
    except QueryFailed as failed:
        context.counters.inc("api.series_unavailable")
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE,
                            f"时序库暂不可用 / time series unavailable: {failed}") from None
    context.counters.inc("api.series_served")
    return SeriesView(point=point_id, field=field, start=start, end=end, step_s=step_s,
                      limit=MAX_BUCKETS,
                      points=[SeriesPoint(t=b.t, mean=b.mean, min=b.min, max=b.max,
                                          count=b.count) for b in buckets[:MAX_BUCKETS]])
