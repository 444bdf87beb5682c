"""``gridsense-server check``: did everything arrive, once? Gaps and duplicates, from the records
(sequence numbers in the database, readings in InfluxDB, incident event ids).
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from ..acks import holes
from ..config import ServerConfig
from ..db.models import Incident, IncidentEvent
from ..db.sequences import ranges, summaries
from .line_protocol import timestamp_ns
from .victoria_reader import series_selector

MAX_LISTED = 1000  # gaps listed per gateway or point; the counts are always complete


class CheckFailed(RuntimeError):
    """The checker could not read what it checks (InfluxDB or the database unreachable)."""


@dataclass(frozen=True, slots=True)
class CheckOptions:
    since: datetime
    until: datetime
    max_gap_s: float = 5.0
    gateway: str | None = None
    measurement: str = "temperature"


@dataclass
class CheckReport:
    options: CheckOptions
    gateways: list[dict[str, Any]] = field(default_factory=list)
    points: list[dict[str, Any]] = field(default_factory=list)
    incidents: dict[str, Any] = field(default_factory=dict)

    @property
    def problems(self) -> list[str]:
        found = []
        for gw in self.gateways:
            if gw["seq_last"] is None:
                found.append(f"gateway {gw['gateway']}: no sequence numbers recorded")
            elif gw["seq_gaps"]:
                found.append(f"gateway {gw['gateway']}: {gw['seq_gaps']} sequence gap(s), "
                             f"{gw['seq_missing']} message(s) missing")
        for point in self.points:
            if point["gap_count"]:
                found.append(f"point {point['point']}: {point['gap_count']} gap(s) longer than "
                             f"{self.options.max_gap_s:g} s")
        if self.incidents.get("duplicate_event_ids"):
            found.append(f"{len(self.incidents['duplicate_event_ids'])} incident event id(s) "
                         "stored more than once")
        if self.incidents.get("opened_more_than_once"):
            found.append(f"{len(self.incidents['opened_more_than_once'])} incident(s) opened "
                         "more than once for the same first event")
        return found

    def to_json(self) -> dict[str, Any]:
        o = self.options
        return {
            "ok": not self.problems, "problems": self.problems,
            "since": _iso(o.since), "until": _iso(o.until), "max_gap_s": o.max_gap_s,
            "measurement": o.measurement, "gateway": o.gateway,
            "gateways": self.gateways, "points": self.points, "incidents": self.incidents,
        }


def run_check(config: ServerConfig, engine: Engine, options: CheckOptions) -> CheckReport:
    report = CheckReport(options)
    with Session(engine) as session:
        report.gateways = _gateways(session, options)
        report.incidents = _incidents(session, options)
    report.points = _points(config, options)
    return report


def _gateways(session: Session, options: CheckOptions) -> list[dict[str, Any]]:
    wanted = [options.gateway] if options.gateway else None
    found = summaries(session, wanted)
    out = []
    for name in sorted(set(found) | set(wanted or [])):
        summary = found.get(name)
        missing = holes(ranges(session, name)) if summary else []
        out.append({
            "gateway": name,
            "seq_first": summary.first if summary else None,
            "seq_last": summary.last if summary else None,
            "received": summary.received if summary else 0,
            "seq_gaps": len(missing),
            "seq_missing": summary.missing if summary else 0,
            "missing_ranges": [list(r) for r in missing[:MAX_LISTED]],
            "redelivered": summary.redelivered if summary else 0,
        })
    return out


def _incidents(session: Session, options: CheckOptions) -> dict[str, Any]:
    opened = select(Incident.id).where(Incident.opened_at >= options.since)
    if options.gateway:
        opened = opened.where(Incident.gateway == options.gateway)
    ids = opened.scalar_subquery()
    total = session.scalar(select(func.count()).select_from(Incident).where(Incident.id.in_(ids)))
    events = session.scalar(select(func.count()).select_from(IncidentEvent)
                            .where(IncidentEvent.incident_id.in_(ids)))
    duplicate_events = session.execute(
        select(IncidentEvent.event_id, func.count()).where(IncidentEvent.incident_id.in_(ids))
        .group_by(IncidentEvent.event_id).having(func.count() > 1).limit(MAX_LISTED)
    ).all()
    opened_twice = session.execute(
        select(Incident.first_event_id, func.count()).where(Incident.id.in_(ids))
        .group_by(Incident.first_event_id).having(func.count() > 1).limit(MAX_LISTED)
    ).all()
    backfilled = session.scalar(select(func.count()).select_from(Incident)
                                .where(Incident.id.in_(ids), Incident.backfilled))
    return {
        "opened": total or 0, "events": events or 0, "backfilled": backfilled or 0,
        "duplicate_event_ids": [{"event_id": e, "count": c} for e, c in duplicate_events],
        "opened_more_than_once": [{"first_event_id": e, "count": c} for e, c in opened_twice],
    }


def _points(config: ServerConfig, options: CheckOptions) -> list[dict[str, Any]]:
    if config.influxdb.kind == "victoriametrics":
        return _points_victoria(config, options)
    return _points_influxql(config, options)


def _points_influxql(config: ServerConfig, options: CheckOptions) -> list[dict[str, Any]]:
    measurement = '"' + options.measurement.replace('"', '\\"') + '"'
    where = f"time >= {timestamp_ns(options.since)} AND time <= {timestamp_ns(options.until)}"
    if options.gateway:
        where += " AND \"gateway\" = '" + options.gateway.replace("'", "\\'") + "'"
    max_gap_ms = int(options.max_gap_s * 1000)
    with httpx.Client(timeout=120, trust_env=False) as client:
        counts = _series(client, config, f'SELECT count("value") FROM {measurement} '
                                         f'WHERE {where} GROUP BY "point", "gateway"')
        lasts = _series(client, config, f'SELECT last("value") FROM {measurement} '
                                        f'WHERE {where} GROUP BY "point"')
        gaps = _series(client, config,
                       f'SELECT "gap" FROM (SELECT elapsed("value", 1ms) AS "gap" FROM '
                       f'{measurement} WHERE {where} GROUP BY "point") WHERE "gap" > '
                       f'{max_gap_ms} GROUP BY "point" LIMIT {MAX_LISTED}')
    last_seen = {tags["point"]: rows[0][0] for tags, rows in lasts}
    gaps_of: dict[str, list[dict[str, Any]]] = {}
    for tags, rows in gaps:
        gaps_of[tags["point"]] = [_gap(end - gap_ms * 1_000_000, end) for end, gap_ms in rows]
    until_ns = timestamp_ns(options.until)
    return [_point_row(tags.get("point", ""), tags.get("gateway"), int(rows[0][1]),
                       last_seen.get(tags.get("point", "")),
                       gaps_of.get(tags.get("point", ""), []), until_ns)
            for tags, rows in sorted(counts, key=lambda item: item[0].get("point", ""))]


def _point_row(point: str, gateway: str | None, readings: int, last: int | None,
               gaps: list[dict[str, Any]], until_ns: int) -> dict[str, Any]:
    return {
        "point": point, "gateway": gateway, "readings": readings,
        "last_reading": _iso_ns(last) if last is not None else None,
        "silent_s": round((until_ns - last) / 1e9, 3) if last is not None else None,
        "gap_count": len(gaps), "gaps": gaps,
    }


def _points_victoria(config: ServerConfig, options: CheckOptions) -> list[dict[str, Any]]:
    """The same report from VictoriaMetrics' raw samples (``/api/v1/export``, one JSON line a
    series): it has no InfluxQL to count and find gaps with."""
    selector = series_selector(options.measurement, config.influxdb.database,
                               gateway=options.gateway)
    params = {"match[]": selector, "start": f"{options.since.timestamp():.3f}",
              "end": f"{options.until.timestamp():.3f}"}
    times: dict[str, list[int]] = {}
    gateway_of: dict[str, str | None] = {}
    try:
        with httpx.Client(timeout=120, trust_env=False) as client, client.stream(
                "GET", f"{config.influxdb.url}/api/v1/export", params=params) as response:
            if response.status_code != 200:
                response.read()
                raise CheckFailed(f"VictoriaMetrics answered {response.status_code}: "
                                  f"{response.text[:300]}")
            for line in response.iter_lines():
                if line.strip():
                    series = json.loads(line)
                    point = series["metric"].get("point", "")
                    gateway_of[point] = series["metric"].get("gateway")
                    times.setdefault(point, []).extend(series["timestamps"])
    except httpx.HTTPError as exc:
        raise CheckFailed(f"VictoriaMetrics at {config.influxdb.url} is unreachable: "
                          f"{exc!r}") from None
    max_gap_ms = options.max_gap_s * 1000
    until_ns = timestamp_ns(options.until)
    out = []
    for point in sorted(times):
        stamps = sorted(times[point])
        gaps = [_gap(a * 1_000_000, b * 1_000_000) for a, b in itertools.pairwise(stamps)
                if b - a > max_gap_ms][:MAX_LISTED]
        out.append(_point_row(point, gateway_of[point], len(stamps), stamps[-1] * 1_000_000,
                              gaps, until_ns))
    return out


def _series(client: httpx.Client, config: ServerConfig,
            query: str) -> list[tuple[dict[str, str], list[list[Any]]]]:
    store = config.influxdb
    v2 = store.kind == "influxdb-v2" and store.token_file is not None
    headers = ({"Authorization": "Token " + store.token_file.read_text(encoding="utf-8").strip()}
               if v2 and store.token_file is not None else {})
    try:
        response = client.post(f"{store.url}/query", headers=headers,
                               data={"q": query, "db": store.bucket_name if v2 else store.database,
                                     "epoch": "ns"})
    except httpx.HTTPError as exc:
        raise CheckFailed(f"InfluxDB at {config.influxdb.url} is unreachable: {exc!r}") from None
    if response.status_code != 200:
        raise CheckFailed(f"InfluxDB answered {response.status_code}: {response.text[:300]}")
    out = []
    for result in response.json().get("results", []):
        if "error" in result:
            if "database not found" in result["error"]:
                return []  # nothing written yet
            raise CheckFailed(f"InfluxDB query failed: {result['error']} ({query})")
        for series in result.get("series", []):
            out.append((series.get("tags", {}), series["values"]))
    return out


def _gap(start_ns: int, end_ns: int) -> dict[str, Any]:
    return {"from": _iso_ns(start_ns), "to": _iso_ns(end_ns),
            "seconds": round((end_ns - start_ns) / 1e9, 3)}


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _iso_ns(ns: int) -> str:
    return _iso(datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=ns // 1000))


def format_text(report: CheckReport) -> str:
    """The report for a person: one line per gateway, point and finding."""
    o = report.options
    lines = [f"gridsense check {_iso(o.since)} .. {_iso(o.until)} "
             f"(series gaps > {o.max_gap_s:g} s in {o.measurement})"]
    for gw in report.gateways:
        if gw["seq_last"] is None:
            lines.append(f"gateway {gw['gateway']}: no sequence numbers recorded")
            continue
        lines.append(
            f"gateway {gw['gateway']}: seq {gw['seq_first']}..{gw['seq_last']}, "
            f"received {gw['received']}, gaps {gw['seq_gaps']} (missing {gw['seq_missing']}), "
            f"redelivered {gw['redelivered']}")
        lines += [f"    missing seq {a}..{b}" for a, b in gw["missing_ranges"]]
    for point in report.points:
        lines.append(f"point {point['point']} ({point['gateway']}): {point['readings']} "
                     f"readings, gaps {point['gap_count']}, last {point['last_reading']} "
                     f"({point['silent_s']} s before the end)")
        lines += [f"    {g['from']} .. {g['to']}  {g['seconds']} s" for g in point["gaps"]]
    inc = report.incidents
    lines.append(f"incidents opened: {inc['opened']} ({inc['backfilled']} backfilled), "
                 f"events {inc['events']}, duplicate event ids "
                 f"{len(inc['duplicate_event_ids'])}, opened more than once "
                 f"{len(inc['opened_more_than_once'])}")
    problems = report.problems
    lines.append("OK: no gaps, no duplicates" if not problems else
                 "PROBLEMS:\n" + "\n".join(f"  - {p}" for p in problems))
    return "\n".join(lines)
