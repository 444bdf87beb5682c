"""Statistics of the closed loop over a time range: incidents per day by type, time to accept
and to complete (mean, median, 90th percentile) per grid and per person against the SLA
targets, the share that missed them (per grid, person and day), the busiest points.
Read-only; one pass over the range's incidents (capped) and their first ``resolve`` history
entries."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from statistics import fmean, median
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from ..config import SlaSpec
from ..db.models import FINAL_STATES, Grid, Incident, IncidentTransition, Point, Staff

MAX_INCIDENTS = 100_000  # a range holding more is refused: narrow it (memory stays bounded)
BUSIEST = 10
EPSILON = timedelta(microseconds=1)  # ``until`` is exclusive


class TooManyIncidents(Exception):
    pass


@dataclass
class _Clock:
    """Times (seconds) from the first event to a step, and how many met their target."""

    took_s: list[float] = field(default_factory=list)
    in_time: int = 0

    def add(self, took_s: float, target_s: float) -> None:
        self.took_s.append(took_s)
        self.in_time += took_s <= target_s

    def row(self, step: str) -> dict[str, Any]:
        ordered = sorted(self.took_s)
        return {f"{step}_mean_s": round(fmean(ordered), 1) if ordered else None,
                f"{step}_median_s": round(median(ordered), 1) if ordered else None,
                # nearest rank: the time nine in ten met
                f"{step}_p90_s": round(ordered[math.ceil(0.9 * len(ordered)) - 1], 1)
                if ordered else None}


@dataclass(eq=False)  # tallies are told apart by identity (a person may hold two roles)
class _Tally:
    opened: int = 0
    accept: _Clock = field(default_factory=_Clock)
    complete: _Clock = field(default_factory=_Clock)
    missed: int = 0  # accepted or completed late, or still waiting past a target

    def row(self) -> dict[str, Any]:
        return {
            "opened": self.opened, "accepted": len(self.accept.took_s),
            **self.accept.row("accept"), "accepted_in_time": self.accept.in_time,
            "completed": len(self.complete.took_s), **self.complete.row("complete"),
            "completed_in_time": self.complete.in_time, "missed_target": self.missed,
            "missed_rate": round(self.missed / self.opened, 4) if self.opened else None,
        }


@dataclass(frozen=True, slots=True)
class _Row:
    incident: Incident
    resolved_at: datetime | None
    resolved_by: str | None


def _rows(session: Session, query: Select[Any]) -> list[_Row]:
    incidents = list(session.scalars(query.limit(MAX_INCIDENTS + 1)))
    if len(incidents) > MAX_INCIDENTS:
        raise TooManyIncidents(f"范围内事件超过 {MAX_INCIDENTS} 条，请缩小时间范围 / more than "
                               f"{MAX_INCIDENTS} incidents in the range: narrow it")
    first: dict[str, tuple[datetime, str]] = {}
    ids = [i.id for i in incidents]
    for chunk in range(0, len(ids), 1000):  # bounded IN lists
        for incident_id, at, actor in session.execute(
                select(IncidentTransition.incident_id, IncidentTransition.at,
                       IncidentTransition.actor)
                .where(IncidentTransition.action == "resolve",
                       IncidentTransition.incident_id.in_(ids[chunk:chunk + 1000]))
                .order_by(IncidentTransition.at)):
            first.setdefault(incident_id, (at, actor))
    return [_Row(i, *first.get(i.id, (None, None))) for i in incidents]


def _days(since: datetime, until: datetime, tz: ZoneInfo) -> list[str]:
    """Every calendar day (in ``tz``) the range touches: a chart's axis has no holes."""
    day, last = since.astimezone(tz).date(), (until - EPSILON).astimezone(tz).date()
    days = []
    while day <= last:
        days.append(day.isoformat())
        day += timedelta(days=1)
    return days


def statistics(session: Session, query: Select[Any], sla: SlaSpec, zone: str, now: datetime,
               since: datetime, until: datetime) -> dict[str, Any]:
    """``query`` selects the incidents (scoped and filtered by the caller) opened in
    [since, until); times to accept and complete count from the first event, completion is the
    first ``resolve``. A person is credited with the step they did: the acceptance to who
    accepted, the completion to who resolved; a late or overdue step counts against them.
    Commissioning drills are never counted: they test the paging, they are not work."""
    rows = _rows(session, query.where(Incident.drill.is_(False)))
    tz = ZoneInfo(zone)
    days = _days(since, until, tz)
    per_day: Counter[tuple[str, str]] = Counter()
    per_point: Counter[str] = Counter()
    day_tallies: dict[str, _Tally] = {day: _Tally() for day in days}
    grids: dict[str | None, _Tally] = defaultdict(_Tally)
    people: dict[str, _Tally] = defaultdict(_Tally)
    total = _Tally()
    for row in rows:
        incident = row.incident
        day = incident.opened_at.astimezone(tz).date().isoformat()
        per_day[(day, incident.type)] += 1
        per_point[incident.point_id] += 1
        shared = [grids[incident.grid_id], total, day_tallies.setdefault(day, _Tally())]
        acceptor = people[incident.accepted_by] if incident.accepted_by else None
        resolver = people[row.resolved_by] if row.resolved_by else None
        involved = [t for t in (acceptor, resolver) if t is not None]
        if acceptor is resolver:
            involved = involved[:1]
        for tally in shared + involved:
            tally.opened += 1
        late = _clock_steps(row, sla, now, shared, acceptor, resolver)
        for tally in shared:
            tally.missed += bool(late)
        for tally in involved:
            tally.missed += any(owner is tally for owner in late)
    return {
        "incidents": len(rows),
        "targets": {"accept_s": sla.accept_s, "complete_s": sla.resolve_s},
        "overall": total.row(),
        "days": days,
        "per_day": [{"day": day, "type": type_, "count": n}
                    for (day, type_), n in sorted(per_day.items())],
        "per_day_totals": [{"day": day, **{k: v for k, v in tally.row().items()
                                           if k in ("opened", "missed_target", "missed_rate")}}
                           for day, tally in sorted(day_tallies.items())],
        "per_grid": _named_grids(session, grids),
        "per_person": _named_people(session, people),
        "busiest_points": _named_points(session, per_point.most_common(BUSIEST)),
    }


def _clock_steps(row: _Row, sla: SlaSpec, now: datetime, shared: list[_Tally],
                 acceptor: _Tally | None, resolver: _Tally | None) -> list[_Tally | None]:
    """Adds the incident's step times to the clocks of ``shared`` and of the person who did
    the step; returns the owner of each step that was late or is overdue (None: nobody held
    it yet, e.g. never accepted)."""
    incident = row.incident
    accept_target, complete_target = sla.deadlines(incident.type, incident.severity)
    late: list[_Tally | None] = []
    for step, done_at, target, owner in (
            ("accept", incident.accepted_at, accept_target, acceptor),
            ("complete", row.resolved_at, complete_target, resolver)):
        if done_at is not None:
            took = (done_at - incident.opened_at).total_seconds()
            if took > target:
                late.append(owner)
            for tally in shared if owner is None else [*shared, owner]:
                getattr(tally, step).add(took, target)
        elif (incident.state not in FINAL_STATES  # still waiting (not closed by the system)
              and (now - incident.opened_at).total_seconds() > target):
            late.append(acceptor if step == "complete" else None)  # who holds it now
    return late


def _named_grids(session: Session, tallies: dict[str | None, _Tally]) -> list[dict[str, Any]]:
    names = {grid: name for grid, name in session.execute(select(Grid.id, Grid.name).where(
        Grid.id.in_([g for g in tallies if g is not None])))}
    return [{"grid": grid, "grid_name": names.get(grid) if grid else None, **tally.row()}
            for grid, tally in sorted(tallies.items(), key=lambda kv: kv[0] or "")]


def _named_people(session: Session, tallies: dict[str, _Tally]) -> list[dict[str, Any]]:
    names = {user: name for user, name in session.execute(
        select(Staff.username, Staff.name).where(Staff.username.in_(list(tallies))))}
    # "handled": the incidents they accepted or resolved (they opened none).
    return [{"username": user, "name": names.get(user),
             **{("handled" if k == "opened" else k): v for k, v in tally.row().items()}}
            for user, tally in sorted(tallies.items())]


def _named_points(session: Session, counts: list[tuple[str, int]]) -> list[dict[str, Any]]:
    names = {point: (name, location) for point, name, location in session.execute(
        select(Point.id, Point.name, Point.location).where(Point.id.in_([p for p, _ in counts])))}
    return [{"point": point, "point_name": names.get(point, (None, None))[0],
             "location": names.get(point, (None, None))[1], "count": n}
            for point, n in counts]
