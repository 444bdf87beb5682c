"""Charts from VictoriaMetrics: the same buckets as InfluxQL's ``GROUP BY time()``, read through
its Prometheus-compatible API with MetricsQL.

VictoriaMetrics stores ``<measurement>,<tags> value=<v>`` written to its ``/write`` as the series
``<measurement>_value{<tags>, db="<database>"}``. A range query evaluates a window that ends at
each step, ``(t - w, t]``; InfluxDB's buckets are ``[s, s + step)``, aligned to multiples of the
step since the epoch and clipped to the asked range. So whole buckets are read with one range
query evaluated 1 ms before each bucket's end (timestamps are stored in milliseconds), and a
clipped first or last bucket with an instant query whose window is that bucket's own part of the
range. Each query returns the four aggregates at once (``union`` of ``label_set``), summed over
the point's series (a point moved to another grid has one series per grid).

VictoriaMetrics hides the newest 30 s of data from queries by default
(``-search.latencyOffset``); docs/operations.md says how to set it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from gridsense_protocol import BREAKDOWN_TAGS

from .influx_http import InfluxHttp, QueryFailed
from .reader import MAX_BUCKETS, Bucket

_AGGREGATES = (("sum", "sum", "sum_over_time"), ("count", "sum", "count_over_time"),
               ("min", "min", "min_over_time"), ("max", "max", "max_over_time"))


def _label_value(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def series_selector(measurement: str, database: str, point: str | None = None,
                    gateway: str | None = None) -> str:
    """The point's own series (every point's without one), untagged by any breakdown: a
    missing label matches ""."""
    labels = [f"__name__={_label_value(measurement + '_value')}", f"db={_label_value(database)}",
              'point!=""' if point is None else f"point={_label_value(point)}",
              *(f'{tag}=""' for tag in BREAKDOWN_TAGS)]
    if gateway is not None:
        labels.append(f"gateway={_label_value(gateway)}")
    return "{" + ",".join(labels) + "}"


def _expression(selector: str, window_ms: int) -> str:
    parts = [f'label_set({outer}({inner}({selector}[{window_ms}ms])),"agg","{name}")'
             for name, outer, inner in _AGGREGATES]
    return f"union({','.join(parts)})"


def _seconds(ms: int) -> str:
    return f"{ms / 1000:.3f}"


class VictoriaReader:
    def __init__(self, http: InfluxHttp) -> None:
        self._http = http

    async def buckets(self, measurement: str, point: str, start: datetime, end: datetime,
                      step_s: int) -> list[Bucket]:
        selector = series_selector(measurement, self._http.config.database, point)
        step = step_s * 1000
        lo, hi = _ms(start), _ms(end)
        if hi <= lo:
            return []
        whole_from = -(-lo // step) * step  # the first bucket starting at or after ``lo``
        whole_to = hi // step * step  # the end of the last bucket ending at or before ``hi``
        found: dict[int, dict[str, float]] = {}
        if lo < whole_from:  # a clipped first bucket, [lo, its end or hi)
            await self._instant(found, selector, whole_from - step, lo, min(whole_from, hi))
        if whole_from < whole_to:
            body = await self._http.get_json("/api/v1/query_range", {
                "query": _expression(selector, step), "start": _seconds(whole_from + step - 1),
                "end": _seconds(whole_to - 1), "step": f"{step_s}s", "nocache": "1"})
            for series in _result(body):
                for t, value in series.get("values", []):
                    _put(found, round(float(t) * 1000) + 1 - step, series, value)
        if whole_from <= whole_to < hi:  # a clipped last bucket, [its start, hi)
            await self._instant(found, selector, whole_to, whole_to, hi)
        return [bucket for t in sorted(found)[:MAX_BUCKETS + 1]
                if (bucket := _bucket(t, found[t])) is not None]

    async def _instant(self, found: dict[int, dict[str, float]], selector: str, bucket_ms: int,
                       window_from: int, window_to: int) -> None:
        body = await self._http.get_json("/api/v1/query", {
            "query": _expression(selector, window_to - window_from),
            "time": _seconds(window_to - 1), "nocache": "1"})
        for series in _result(body):
            value = series.get("value")
            if value:
                _put(found, bucket_ms, series, value[1])


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _result(body: Any) -> Iterable[dict[str, Any]]:
    if not isinstance(body, dict) or body.get("status") != "success":
        raise QueryFailed(f"victoriametrics refused the query: {str(body)[:300]}")
    return body["data"]["result"]


def _put(found: dict[int, dict[str, float]], bucket_ms: int, series: dict[str, Any],
         value: str) -> None:
    found.setdefault(bucket_ms, {})[series["metric"].get("agg", "")] = float(value)


def _bucket(t_ms: int, aggregates: dict[str, float]) -> Bucket | None:
    count = int(aggregates.get("count", 0))
    if count <= 0 or not {"sum", "min", "max"} <= aggregates.keys():
        return None
    return Bucket(datetime.fromtimestamp(t_ms / 1000, UTC), aggregates["sum"] / count,
                  aggregates["min"], aggregates["max"], count)
