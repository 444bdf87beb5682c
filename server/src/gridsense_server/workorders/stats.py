"""Statistics of the closed loop over a time range: incidents per day by type, time to accept
and to complete per grid and per person against the SLA targets, the share that missed them,
the busiest points. Read-only; one pass over the range's incidents (capped) and their first
``resolve`` history entries."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from statistics import fmean
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from ..config import SlaSpec
from ..db.models import FINAL_STATES, Grid, Incident, IncidentTransition, Point, Staff

MAX_INCIDENTS = 100_000  # a range holding more is refused: narrow it (memory stays bounded)
BUSIEST = 10


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


@dataclass
class _Tally:
    opened: int = 0
    accept: _Clock = field(default_factory=_Clock)
    complete: _Clock = field(default_factory=_Clock)
    missed: int = 0  # accepted or completed late, or still waiting past a target

    def row(self) -> dict[str, Any]:
        return {
            "opened": self.opened, "accepted": len(self.accept.took_s),
            "accept_mean_s": _mean(self.accept.took_s), "accepted_in_time": self.accept.in_time,
            "completed": len(self.complete.took_s), "complete_mean_s": _mean(self.complete.took_s),
            "completed_in_time": self.complete.in_time, "missed_target": self.missed,
            "missed_rate": round(self.missed / self.opened, 4) if self.opened else None,
        }


def _mean(values: list[float]) -> float | None:
    return round(fmean(values), 1) if values else None


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


def statistics(session: Session, query: Select[Any], sla: SlaSpec, zone: str,
               now: datetime) -> dict[str, Any]:
    """``query`` selects the incidents (scoped and filtered by the caller); times to accept and
    complete count from the first event, completion is the first ``resolve``. Commissioning
    drills are never counted: they test the paging, they are not work."""
    rows = _rows(session, query.where(Incident.drill.is_(False)))
    tz = ZoneInfo(zone)
    per_day: Counter[tuple[str, str]] = Counter()
    per_point: Counter[str] = Counter()
    grids: dict[str | None, _Tally] = defaultdict(_Tally)
    people: dict[str, _Tally] = defaultdict(_Tally)
    total = _Tally()
    for row in rows:
        incident = row.incident
        per_day[(incident.opened_at.astimezone(tz).date().isoformat(), incident.type)] += 1
        per_point[incident.point_id] += 1
        accept_target, complete_target = sla.deadlines(incident.type, incident.severity)
        tallies = [grids[incident.grid_id], total]
        if incident.accepted_by:
            tallies.append(people[incident.accepted_by])
        missed = False
        for tally in tallies:
            tally.opened += 1
        for step, done_at, target in (("accept", incident.accepted_at, accept_target),
                                      ("complete", row.resolved_at, complete_target)):
            if done_at is not None:
                took = (done_at - incident.opened_at).total_seconds()
                missed |= took > target
                for tally in tallies:
                    getattr(tally, step).add(took, target)
            elif incident.state not in FINAL_STATES:  # still waiting (not closed by the system)
                missed |= (now - incident.opened_at).total_seconds() > target
        for tally in tallies:
            tally.missed += missed
    return {
        "incidents": len(rows),
        "targets": {"accept_s": sla.accept_s, "complete_s": sla.resolve_s},
        "overall": total.row(),
        "per_day": [{"day": day, "type": type_, "count": n}
                    for (day, type_), n in sorted(per_day.items())],
        "per_grid": _named_grids(session, grids),
        "per_person": _named_people(session, people),
        "busiest_points": _named_points(session, per_point.most_common(BUSIEST)),
    }


def _named_grids(session: Session, tallies: dict[str | None, _Tally]) -> list[dict[str, Any]]:
    names = {grid: name for grid, name in session.execute(select(Grid.id, Grid.name).where(
        Grid.id.in_([g for g in tallies if g is not None])))}
    return [{"grid": grid, "grid_name": names.get(grid) if grid else None, **tally.row()}
            for grid, tally in sorted(tallies.items(), key=lambda kv: kv[0] or "")]


def _named_people(session: Session, tallies: dict[str, _Tally]) -> list[dict[str, Any]]:
    names = {user: name for user, name in session.execute(
        select(Staff.username, Staff.name).where(Staff.username.in_(list(tallies))))}
    return [{"username": user, "name": names.get(user), **tally.row()}
            for user, tally in sorted(tallies.items())]


def _named_points(session: Session, counts: list[tuple[str, int]]) -> list[dict[str, Any]]:
    names = {point: (name, location) for point, name, location in session.execute(
        select(Point.id, Point.name, Point.location).where(Point.id.in_([p for p, _ in counts])))}
    return [{"point": point, "point_name": names.get(point, (None, None))[0],
             "location": names.get(point, (None, None))[1], "count": n}
            for point, n in counts]
