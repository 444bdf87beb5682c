"""A point's time series for charts, and sparklines of many points at once: downsampled on the
server, scoped by the caller's grids.

404 alike for an unknown point and one in a grid the caller does not see (no probing for ids);
503 when the time-series store does not answer.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, status
from pydantic import BaseModel
from sqlalchemy import select

from gridsense_protocol import utc_now

from ..db.models import Point
from ..registry.viewers import Viewer
from ..timeseries.reader import MAX_BUCKETS, QueryFailed, SeriesReader, Sparkline, choose_step
from .deps import Context, CurrentViewer

router = APIRouter()

MAX_RANGE = timedelta(days=400)
DEFAULT_RANGE = timedelta(hours=24)
DEFAULT_FIELD = "temperature"
FIELD_PATTERN = "^[a-z][a-z0-9_]{0,47}$"
MAX_SPARKLINE_POINTS = 200  # per request: a page of points
SPARKLINE_BUCKETS = 96  # per sparkline: 24 h in 15-minute steps
LATEST_LOOKBACK = timedelta(days=30)  # a point silent for longer shows no latest value


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


def _unavailable(context: Context, failed: QueryFailed) -> HTTPException:
    context.counters.inc("api.series_unavailable")
    return HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE,
                         f"时序库暂不可用 / time series unavailable: {failed}")


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


class SparklineSeries(BaseModel):
    point: str
    field: str  # the measurement (the reading's metric)
    latest_at: datetime | None  # the latest reading in the look-back, if any
    latest: float | None
    values: list[tuple[int, float]]  # [epoch milliseconds of the bucket's start, mean]


class SparklinesView(BaseModel):
    start: datetime
    end: datetime
    step_s: int
    latest_since: datetime  # how far back the latest reading is looked for
    points: list[str]  # the points answered for, by id (a point with no data has no series)
    unknown: list[str]  # asked for, but not a point the caller sees
    truncated: bool  # a gateway with more points than one request answers for
    series: list[SparklineSeries]  # by point, then field


def _sparkline_points(context: Context, viewer: Viewer, asked: list[str],
                      gateway: str | None) -> tuple[list[str], list[str], bool]:
    """(visible points, unknown asked ids, truncated): the asked ids and the gateway's points
    that are in the caller's grids, at most MAX_SPARKLINE_POINTS."""
    with context.factory() as session:
        known = {point: grid for point, grid in session.execute(
            select(Point.id, Point.grid_id).where(Point.id.in_(asked)))} if asked else {}
        mine = [p for p in dict.fromkeys(asked) if p in known and viewer.sees_grid(known[p])]
        unknown = sorted(set(asked) - set(mine))
        truncated = False
        if gateway is not None:
            query = select(Point.id).where(Point.gateway == gateway)
            if viewer.grids is not None:
                query = query.where(Point.grid_id.in_(sorted(viewer.grids)))
            room = MAX_SPARKLINE_POINTS - len(mine)
            served = list(session.scalars(query.order_by(Point.id).limit(room + 1)))
            truncated = len(served) > room
            mine = list(dict.fromkeys(mine + served[:room]))
    return mine, unknown, truncated


@router.get("/api/v1/points/sparklines", response_model=SparklinesView, tags=["series"],
            responses={503: {"description": "the time-series store does not answer"}})
async def point_sparklines(
    viewer: CurrentViewer,
    context: Context,
    request: Request,
    point: Annotated[list[str] | None, Query(description="a point id; repeat for more")] = None,
    gateway: Annotated[str | None, Query(description="every point of this gateway")] = None,
    start: Annotated[datetime | None, Query(alias="from",
                                            description="ISO time with zone; default to - 24 h")]
    = None,
    end: Annotated[datetime | None, Query(alias="to", description="ISO time; default now")]
    = None,
    field: Annotated[str | None, Query(pattern=FIELD_PATTERN,
                                       description="one metric; default every metric")] = None,
) -> SparklinesView:
    """Many points at once, for a list: each metric's latest reading and its means over the
    range in at most ~96 buckets. Points the caller does not see are listed as unknown."""
    asked = point or []
    if not asked and gateway is None:
        raise HTTPException(422, "请指定 point 或 gateway / give point or gateway")
    if len(asked) > MAX_SPARKLINE_POINTS:
        raise HTTPException(422, f"一次最多 {MAX_SPARKLINE_POINTS} 个测点 / at most "
                                 f"{MAX_SPARKLINE_POINTS} points a request")
    reader = _reader(request)
    start, end = _bounds(start, end)
    points, unknown, truncated = await asyncio.to_thread(_sparkline_points, context, viewer,
                                                         asked, gateway)
    step_s = choose_step(start, end, limit=SPARKLINE_BUCKETS)
    latest_since = end - LATEST_LOOKBACK
    lines: dict[tuple[str, str], Sparkline] = {}
    answered = set(points)
    if points:
        try:
            lines = await reader.sparklines(points, field, start, end, step_s, latest_since)
        except QueryFailed as failed:
            raise _unavailable(context, failed) from None
    context.counters.inc("api.sparklines_served")
    return SparklinesView(
        start=start, end=end, step_s=step_s, latest_since=latest_since, points=points,
        unknown=unknown, truncated=truncated,
        series=[SparklineSeries(
            point=p, field=f, latest_at=line.latest[0] if line.latest else None,
            latest=line.latest[1] if line.latest else None,
            values=[(round(t.timestamp() * 1000), mean)
                    for t, mean in line.means[:SPARKLINE_BUCKETS + 1]])
            for (p, f), line in sorted(lines.items()) if p in answered])


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
    field: Annotated[str, Query(pattern=FIELD_PATTERN)] = DEFAULT_FIELD,
) -> SeriesView:
    """Mean, min and max per bucket, at most ~1,000 buckets whatever the range."""
    reader = _reader(request)
    start, end = _bounds(start, end)
    await asyncio.to_thread(_visible_point, context, viewer, point_id)
    step_s = choose_step(start, end, step)
    try:
        buckets = await reader.buckets(field, point_id, start, end, step_s)
    except QueryFailed as failed:
        raise _unavailable(context, failed) from None
    context.counters.inc("api.series_served")
    return SeriesView(point=point_id, field=field, start=start, end=end, step_s=step_s,
                      limit=MAX_BUCKETS,
                      points=[SeriesPoint(t=b.t, mean=b.mean, min=b.min, max=b.max,
                                          count=b.count) for b in buckets[:MAX_BUCKETS]])
