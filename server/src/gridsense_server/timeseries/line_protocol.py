"""InfluxDB line protocol, formatted cheaply: the server's hottest loop.

One reading becomes ``<metric>,gateway=<gw>,grid=<grid>,point=<point> value=<float> <ns>``;
a reading's own tags (a breakdown such as ``class=person``) join the server's, all sorted.
Tag keys are sorted (InfluxDB's preferred order) and the measurement+tags prefix of a series is
cached, so the per-reading cost is one float repr, one int and one f-string.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from gridsense_protocol import Health, Reading

UNASSIGNED_GRID = "unassigned"
_PREFIX_CACHE_LIMIT = 100_000
_NS_MIN, _NS_MAX = -(2**63), 2**63 - 1

_TAG_ESCAPES = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ ", "\n": r"\ ", "\r": r"\ "})
_MEASUREMENT_ESCAPES = str.maketrans({",": r"\,", " ": r"\ ", "\n": r"\ ", "\r": r"\ "})


def escape_tag(value: str) -> str:
    """Escape a tag key or value: commas, equals signs and spaces get a backslash.

    Newlines cannot be escaped in line protocol at all; they become escaped spaces. A trailing
    lone backslash would escape the separator after it, so it is doubled.
    """
    escaped = value.translate(_TAG_ESCAPES)
    if escaped.endswith("\\") and not escaped.endswith(("\\,", "\\=", "\\ ")):
        escaped += "\\"
    return escaped


def grid_tag(grid: str | None) -> str:
    """The ``grid`` tag of every series. Every registered point has a grid, so a point with
    none is one the registry does not assign (yet): tagged ``unassigned``, because InfluxDB
    rejects an empty tag value (and a missing tag would hide the point from ``grid``-grouped
    queries)."""
    return escape_tag(grid) if grid else UNASSIGNED_GRID


def escape_measurement(value: str) -> str:
    return value.translate(_MEASUREMENT_ESCAPES)


def timestamp_ns(ts: datetime) -> int:
    # A float has ~0.2 µs resolution at today's epoch seconds, so rounding to whole
    # microseconds is exact; datetimes carry no finer time anyway.
    return round(ts.timestamp() * 1_000_000) * 1000


class LineFormatter:
    """Turns one gateway's readings into lines, tagging each with its point's grid."""

    def __init__(self, grid_of: Callable[[str], str | None]) -> None:
        self._grid_of = grid_of
        self._prefixes: dict[tuple[str, ...], str] = {}
        # The earliest and latest time (ns) of the last format() call's readings: bounds are
        # checked on integers, where comparing aware datetimes would cost ~1 µs a reading.
        self.span = (0, 0)

    def prefix(self, metric: str, gateway: str, point: str, grid: str | None,
               tags: dict[str, str] | None = None) -> str:
        pairs = {"gateway": escape_tag(gateway), "grid": grid_tag(grid),
                 "point": escape_tag(point)}
        for key, value in (tags or {}).items():
            pairs[escape_tag(key)] = escape_tag(value)
        joined = ",".join(f"{key}={pairs[key]}" for key in sorted(pairs))
        return f"{escape_measurement(metric)},{joined} value="

    def forget_prefixes(self) -> None:
        """Call after the registry changed: cached prefixes carry the old grid."""
        self._prefixes = {}

    def format(self, gateway: str, readings: Iterable[Reading]) -> tuple[list[str], list[str]]:
        """Lines for the readings, and the points (one per reading) that have no grid."""
        lines: list[str] = []
        unknown: list[str] = []
        prefixes = self._prefixes
        lo, hi = _NS_MAX, _NS_MIN
        for reading in readings:
            tags = reading.tags
            key: tuple[str, ...] = (reading.metric, gateway, reading.point)
            if tags:
                key += tuple(f"{k}={v}" for k, v in sorted(tags.items()))
            prefix = prefixes.get(key)
            if prefix is None:
                grid = self._grid_of(reading.point)
                if grid is None:
                    # Not cached: once the point is registered it gets its grid.
                    unknown.append(reading.point)
                    prefix = self.prefix(reading.metric, gateway, reading.point, None, tags)
                else:
                    if len(prefixes) >= _PREFIX_CACHE_LIMIT:
                        prefixes.clear()  # bounded, whatever the number of series
                    prefix = self.prefix(reading.metric, gateway, reading.point, grid, tags)
                    prefixes[key] = prefix
            ns = timestamp_ns(reading.ts)
            if ns < lo:
                lo = ns
            if ns > hi:
                hi = ns
            lines.append(f"{prefix}{reading.value!r} {ns}")
        self.span = (lo, hi)
        return lines, unknown


def health_line(message: Health) -> str:
    """``gateway_health,gateway=<gw> cpu_percent=..,... <ns>``; all fields floats, always."""
    fields = (
        f"cpu_percent={float(message.cpu_percent)!r},"
        f"disk_free_bytes={float(message.disk_free_bytes)!r},"
        f"memory_rss_bytes={float(message.memory_rss_bytes)!r},"
        f"uptime_s={float(message.uptime_s)!r}"
    )
    gateway = escape_tag(message.gateway)
    return f"gateway_health,gateway={gateway} {fields} {timestamp_ns(message.ts)}"
