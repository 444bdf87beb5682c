"""Reading a point's history for charts: downsampled buckets (mean, min, max, count) behind a
small interface, so another time-series backend can stand behind the same API route."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from gridsense_protocol import BREAKDOWN_TAGS

from .influx_http import InfluxHttp, QueryFailed
from .line_protocol import timestamp_ns

MAX_BUCKETS = 1000  # per series: a chart is at most ~1,000 pixels wide
# Bucket widths a step is rounded up to, in seconds: aligned, readable axis ticks.
NICE_STEPS_S = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600,
                43200, 86400, 172800, 604800)


@dataclass(frozen=True, slots=True)
class Bucket:
    """One step of a series: its start and the readings' mean, min, max and count in it."""

    t: datetime
    mean: float
    min: float
    max: float
    count: int


@dataclass(slots=True)
class Sparkline:
    """One metric of one point: its latest reading (if any in the look-back) and the means of
    its non-empty buckets, oldest first."""

    latest: tuple[datetime, float] | None = None
    means: list[tuple[datetime, float]] = field(default_factory=list)


SeriesKey = tuple[str, str]  # (point, metric)


@dataclass(frozen=True, slots=True)
class FirstReading:
    """A point's earliest stored reading of one metric (measurement)."""

    point: str
    metric: str
    value: float
    t: datetime


class SeriesReader(Protocol):
    async def buckets(self, measurement: str, point: str, start: datetime, end: datetime,
                      step_s: int) -> list[Bucket]:
        """The non-empty buckets of ``step_s`` seconds in [start, end), oldest first, at most
        ``MAX_BUCKETS + 1``; raises QueryFailed when the store does not answer."""
        ...

    async def sparklines(self, points: list[str], measurement: str | None, start: datetime,
                         end: datetime, step_s: int,
                         latest_since: datetime) -> dict[SeriesKey, Sparkline]:
        """For many points at once: every metric of theirs (or only ``measurement``), its
        latest reading in [latest_since, end) and its mean per ``step_s`` bucket in
        [start, end), at most ``(end - start) / step_s + 1`` buckets a series; raises
        QueryFailed when the store does not answer."""
        ...

    async def first_readings(self, gateway: str, since: datetime) -> list[FirstReading]:
        """Each point's earliest reading per metric from ``gateway`` since ``since``; raises
        QueryFailed when the store does not answer."""
        ...



def choose_step(start: datetime, end: datetime, requested_s: int | None = None,
                limit: int = MAX_BUCKETS) -> int:
    """The smallest nice step that keeps the range within ``limit`` buckets, or the requested
    one if it is coarser: a client cannot ask for more points than a chart can show."""
    needed = math.ceil((end - start).total_seconds() / limit)
    needed = max(needed, requested_s or 1)
    return next((step for step in NICE_STEPS_S if step >= needed), needed)


def _quote_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _quote_identifier(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


# A point's own series is its untagged one: breakdowns (detections by class, ...) are the same
# measurement with a breakdown tag set, and a missing tag compares equal to ''.
_OWN_SERIES = "".join(f"AND \"{tag}\" = '' " for tag in BREAKDOWN_TAGS)


class InfluxQLReader:
    """InfluxDB 1.x (and the v1 compatibility API of 2.x/3.x): one GROUP BY time() query."""

    def __init__(self, http: InfluxHttp) -> None:
        self._http = http

    async def buckets(self, measurement: str, point: str, start: datetime, end: datetime,
                      step_s: int) -> list[Bucket]:
        query = (
            'SELECT mean("value"), min("value"), max("value"), count("value") '
            f"FROM {_quote_identifier(measurement)} WHERE \"point\" = {_quote_string(point)} "
            f"{_OWN_SERIES}"
            f"AND time >= {timestamp_ns(start)} AND time < {timestamp_ns(end)} "
            f"GROUP BY time({int(step_s)}s) fill(none) LIMIT {MAX_BUCKETS + 1}"
        )
        body = await self._http.query(query)
        result = []
        for statement in body.get("results", []):
            for series in statement.get("series", []):
                for ms, mean, low, high, count in series.get("values", []):
                    result.append(Bucket(datetime.fromtimestamp(ms / 1000, UTC), float(mean),
                                         float(low), float(high), int(count)))
        return result

    async def first_readings(self, gateway: str, since: datetime) -> list[FirstReading]:
        # One query for the whole gateway: every measurement, one series per (metric, point).
        query = (f'SELECT first("value") FROM /.*/ WHERE "gateway" = {_quote_string(gateway)} '
                 f'{_OWN_SERIES}AND time >= {timestamp_ns(since)} GROUP BY "point"')
        body = await self._http.query(query)
        result = []
        for statement in body.get("results", []):
            for series in statement.get("series", []):
                point = (series.get("tags") or {}).get("point")
                for ms, value in series.get("values", [])[:1]:
                    if point and value is not None:
                        result.append(FirstReading(point, series["name"], float(value),
                                                   datetime.fromtimestamp(ms / 1000, UTC)))
        return result

    async def sparklines(self, points: list[str], measurement: str | None, start: datetime,
                         end: datetime, step_s: int,
                         latest_since: datetime) -> dict[SeriesKey, Sparkline]:
        # Every measurement unless one is named: a point's metrics are not in the registry.
        # Measurements without a "value" field (access) or a "point" tag (gateway_health)
        # select nothing.
        source = _quote_identifier(measurement) if measurement else "/.*/"
        limit = math.ceil((end - start).total_seconds() / step_s) + 1
        result: dict[SeriesKey, Sparkline] = {}
        for first in range(0, len(points), SPARKLINE_CHUNK):  # bounded query text
            where = " OR ".join(f'"point" = {_quote_string(p)}'
                                for p in points[first:first + SPARKLINE_CHUNK])
            body = await self._http.query(
                f'SELECT last("value") FROM {source} WHERE ({where}) {_OWN_SERIES}'
                f"AND time >= {timestamp_ns(latest_since)} AND time < {timestamp_ns(end)} "
                'GROUP BY "point"; '
                f'SELECT mean("value") FROM {source} WHERE ({where}) {_OWN_SERIES}'
                f"AND time >= {timestamp_ns(start)} AND time < {timestamp_ns(end)} "
                f'GROUP BY time({int(step_s)}s), "point" fill(none) LIMIT {limit}')
            statements = {r.get("statement_id", i): r
                          for i, r in enumerate(body.get("results", []))}
            for key, (ms, value) in _rows(statements.get(0, {})):
                result.setdefault(key, Sparkline()).latest = (_utc(ms), float(value))
            for key, (ms, mean) in _rows(statements.get(1, {})):
                result.setdefault(key, Sparkline()).means.append((_utc(ms), float(mean)))
        return result


SPARKLINE_CHUNK = 100  # points per InfluxQL request


def _utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _rows(statement: dict[str, Any]) -> list[tuple[SeriesKey, tuple[int, float]]]:
    """(point, measurement) and (time, value) of each row of a ``GROUP BY "point"`` result."""
    return [((series.get("tags", {}).get("point", ""), series["name"]), (row[0], row[1]))
            for series in statement.get("series", []) for row in series.get("values", [])
            if row[1] is not None]


__all__ = ["MAX_BUCKETS", "Bucket", "InfluxQLReader", "QueryFailed", "SeriesKey", "SeriesReader",
           "Sparkline", "choose_step"]


__all__ = ["MAX_BUCKETS", "Bucket", "FirstReading", "InfluxQLReader", "QueryFailed", "SeriesReader",
           "choose_step"]
