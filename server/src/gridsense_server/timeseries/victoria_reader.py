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

import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from gridsense_protocol import BREAKDOWN_TAGS

from .influx_http import InfluxHttp, QueryFailed
from .reader import MAX_BUCKETS, SPARKLINE_CHUNK, Bucket, FirstReading, SeriesKey, Sparkline

_AGGREGATES = (("sum", "sum", "sum_over_time"), ("count", "sum", "count_over_time"),
               ("min", "min", "min_over_time"), ("max", "max", "max_over_time"))


def _label_value(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def series_selector(measurement: str | None, database: str, point: str | None = None,
                    gateway: str | None = None, points: list[str] | None = None) -> str:
    """The point's own series (every point's without one, or those of ``points``), untagged by
    any breakdown: a missing label matches "". Without a measurement, every one's."""
    if points is not None:
        alternatives = "|".join(re.escape(p) for p in points)
        where = f"point=~{_label_value(alternatives)}"
    else:
        where = 'point!=""' if point is None else f"point={_label_value(point)}"
    name = (f"__name__={_label_value(measurement + '_value')}" if measurement
            else '__name__=~".+_value"')
    labels = [name, f"db={_label_value(database)}", where,
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

    async def sparklines(self, points: list[str], measurement: str | None, start: datetime,
                         end: datetime, step_s: int,
                         latest_since: datetime) -> dict[SeriesKey, Sparkline]:
        """Per point and metric, over the point's series of every grid it had (summed): the
        latest reading since ``latest_since`` and the mean of each whole ``step_s`` bucket."""
        result: dict[SeriesKey, Sparkline] = {}
        step = step_s * 1000
        lo, hi = -(-_ms(start) // step) * step, _ms(end)
        for first in range(0, len(points), SPARKLINE_CHUNK):
            chunk = points[first:first + SPARKLINE_CHUNK]
            selector = series_selector(measurement, self._http.config.database, points=chunk)
            names = await self._metric_names(selector)
            for name in names:
                metric = name.removesuffix("_value")
                one = series_selector(metric, self._http.config.database, points=chunk)
                await self._latest(result, metric, one, _ms(latest_since), hi)
                if lo + step <= hi:
                    expression = (f"sum by (point) (sum_over_time({one}[{step}ms])) / "
                                  f"sum by (point) (count_over_time({one}[{step}ms]))")
                    body = await self._http.get_json("/api/v1/query_range", {
                        "query": expression, "start": _seconds(lo + step - 1),
                        "end": _seconds(hi - 1), "step": f"{step_s}s", "nocache": "1"})
                    for series in _result(body):
                        line = result.setdefault((series["metric"].get("point", ""), metric),
                                                 Sparkline())
                        line.means.extend(
                            (_utc_ms(round(float(t) * 1000) + 1 - step), float(v))
                            for t, v in series.get("values", []))
        return result

    async def _metric_names(self, selector: str) -> list[str]:
        body = await self._http.get_json("/api/v1/label/__name__/values",
                                         {"match[]": selector})
        if not isinstance(body, dict) or body.get("status") != "success":
            raise QueryFailed(f"victoriametrics refused the query: {str(body)[:300]}")
        return sorted(str(name) for name in body.get("data", []))

    async def _latest(self, result: dict[SeriesKey, Sparkline], metric: str, selector: str,
                      since_ms: int, end_ms: int) -> None:
        for point, moment, value in await self._end_readings("last", selector, since_ms, end_ms):
            line = result.setdefault((point, metric), Sparkline())
            if line.latest is None or moment > line.latest[0]:  # the newest of its series
                line.latest = (moment, value)

    async def first_readings(self, gateway: str, since: datetime) -> list[FirstReading]:
        selector = series_selector(None, self._http.config.database, gateway=gateway)
        end = _ms(datetime.now(UTC)) + 1
        first: dict[tuple[str, str], FirstReading] = {}
        for name in await self._metric_names(selector):
            metric = name.removesuffix("_value")
            one = series_selector(metric, self._http.config.database, gateway=gateway)
            for point, moment, value in await self._end_readings("first", one, _ms(since), end):
                known = first.get((point, metric))
                if known is None or moment < known.t:  # the oldest of its series
                    first[(point, metric)] = FirstReading(point, metric, value, moment)
        return list(first.values())

    async def _end_readings(self, which: str, selector: str, since_ms: int,
                            end_ms: int) -> list[tuple[str, datetime, float]]:
        """(point, time, value) of each series' first or last sample in [since, end)."""
        window = max(end_ms - since_ms, 1)
        expression = (f'union(label_set({which}_over_time({selector}[{window}ms]),"agg","v"),'
                      f'label_set(t{which}_over_time({selector}[{window}ms]),"agg","t"))')
        body = await self._http.get_json("/api/v1/query", {
            "query": expression, "time": _seconds(end_ms - 1), "nocache": "1"})
        pairs: dict[tuple[tuple[str, str], ...], dict[str, float]] = {}
        for series in _result(body):
            labels = dict(series["metric"])
            agg = labels.pop("agg", "")
            labels.pop("__name__", None)
            pairs.setdefault(tuple(sorted(labels.items())), {})[agg] = float(series["value"][1])
        return [(dict(labels).get("point", ""), _utc_ms(round(value["t"] * 1000)), value["v"])
                for labels, value in pairs.items() if "t" in value and "v" in value]

    async def _instant(self, found: dict[int, dict[str, float]], selector: str, bucket_ms: int,
                       window_from: int, window_to: int) -> None:
        body = await self._http.get_json("/api/v1/query", {
            "query": _expression(selector, window_to - window_from),
            "time": _seconds(window_to - 1), "nocache": "1"})
        for series in _result(body):
            value = series.get("value")
            if value:
                _put(found, bucket_ms, series, value[1])


def _utc_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


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
