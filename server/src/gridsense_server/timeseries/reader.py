"""Reading a point's history for charts: downsampled buckets (mean, min, max, count) behind a
small interface, so another time-series backend can stand behind the same API route."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

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

    async def first_readings(self, gateway: str, since: datetime) -> list[FirstReading]:
        """Each point's earliest reading per metric from ``gateway`` since ``since``; raises
        QueryFailed when the store does not answer."""
        ...


def choose_step(start: datetime, end: datetime, requested_s: int | None = None) -> int:
    """The smallest nice step that keeps the range within MAX_BUCKETS buckets, or the requested
    one if it is coarser: a client cannot ask for more points than a chart can show."""
    needed = math.ceil((end - start).total_seconds() / MAX_BUCKETS)
    needed = max(needed, requested_s or 1)
    return next((step for step in NICE_STEPS_S if step >= needed), needed)


def _quote_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _quote_identifier(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class InfluxQLReader:
    """InfluxDB 1.x (and the v1 compatibility API of 2.x/3.x): one GROUP BY time() query."""

    def __init__(self, http: InfluxHttp) -> None:
        self._http = http

    async def buckets(self, measurement: str, point: str, start: datetime, end: datetime,
                      step_s: int) -> list[Bucket]:
        query = (
            'SELECT mean("value"), min("value"), max("value"), count("value") '
            f"FROM {_quote_identifier(measurement)} WHERE \"point\" = {_quote_string(point)} "
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
                 f'AND time >= {timestamp_ns(since)} GROUP BY "point"')
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


__all__ = ["MAX_BUCKETS", "Bucket", "FirstReading", "InfluxQLReader", "QueryFailed", "SeriesReader",
           "choose_step"]
