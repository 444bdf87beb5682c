"""A site's own temperature history from InfluxDB, as one value a minute per point.

InfluxQL over the v1 ``/query`` API (InfluxDB 1.x, and 2.x/3.x through their v1 compatibility
API): ``mean(value)`` per minute of the server's ``temperature`` measurement for each point,
which is the minute series the edge rule keeps. Minutes without data are NaN.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime

import numpy as np

MINUTE_NS = 60 * 10**9


class HistoryError(ValueError):
    """Bad input or an unusable answer; the message names the URL or the point."""


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


def query(url: str, database: str, q: str, timeout_s: float = 60.0) -> list[list[object]]:
    data = urllib.parse.urlencode({"db": database, "q": q, "epoch": "ns"}).encode()
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/query", data=data,
                                    timeout=timeout_s) as resp:
            answer = json.loads(resp.read())
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise HistoryError(f"{url}: InfluxDB query failed: {exc}") from None
    rows: list[list[object]] = []
    for result in answer.get("results", []):
        if "error" in result:
            raise HistoryError(f"{url}: {result['error']}")
        for series in result.get("series", []):
            rows.extend(series["values"])
    return rows


def minute_series(url: str, database: str, points: list[str], since: datetime,
                  until: datetime, measurement: str = "temperature") -> np.ndarray:
    """(len(points), minutes) of per-minute means, NaN where a minute has no reading."""
    start_ns = int(since.timestamp()) // 60 * MINUTE_NS
    minutes = (int(until.timestamp()) // 60 * MINUTE_NS - start_ns) // MINUTE_NS
    if minutes <= 0:
        raise HistoryError(f"empty time range {since.isoformat()} .. {until.isoformat()}")
    out = np.full((len(points), minutes), np.nan)
    for i, point in enumerate(points):
        rows = query(url, database,
                     f'SELECT mean("value") FROM "{_quote(measurement)}" '
                     f"WHERE \"point\" = '{_quote(point)}' AND time >= {start_ns} "
                     f"AND time < {start_ns + minutes * MINUTE_NS} GROUP BY time(1m) fill(none)")
        if not rows:
            raise HistoryError(f"point {point!r}: no {measurement} readings in {database} "
                               f"between {since.isoformat()} and {until.isoformat()}")
        for ts, value in rows:
            if isinstance(value, int | float):
                out[i, (int(ts) - start_ns) // MINUTE_NS] = float(value)  # type: ignore[arg-type]
    return out
