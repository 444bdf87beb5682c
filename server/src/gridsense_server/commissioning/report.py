"""The commissioning report of a run: each point of the gateway with its first reading, the
drill's delivery and round trip, and the verdict (green, red, or pending while the drill is on
its way) with the reasons in Chinese and English."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..db.commissioning_models import CommissioningRun
from ..db.enrollment_models import EnrolledGateway
from ..db.models import Notification, Point, Staff
from ..i18n import catalogue
from ..notify.page_facts import grid_labels
from ..timeseries.reader import FirstReading
from .drill import PENDING, UNREACHED

GREEN, RED = "green", "red"


def _seconds(start: datetime, end: datetime | None) -> float | None:
    return None if end is None else round((end - start).total_seconds(), 1)


def _points(session: Session, gateway: str, first: list[FirstReading]) -> list[dict[str, Any]]:
    by_point: dict[str, list[FirstReading]] = {}
    for reading in first:
        by_point.setdefault(reading.point, []).append(reading)
    points = list(session.scalars(select(Point).where(Point.gateway == gateway)
                                  .order_by(Point.id)))
    grids = grid_labels(session, {p.grid_id for p in points})
    rows = []
    for point in points:
        readings = sorted(by_point.get(point.id, []), key=lambda r: (r.t, r.metric))
        rows.append({
            "point": point.id, "name": point.name, "grid": point.grid_id,
            "grid_name": grids.get(point.grid_id), "location": point.location,
            "first": [{"metric": r.metric, "value": r.value, "t": r.t.isoformat()}
                      for r in readings],
            "ok": bool(readings)})
    return rows


def _deliveries(session: Session, incident_id: str | None) -> list[dict[str, Any]]:
    if incident_id is None:
        return []
    return [{"channel": n.channel, "status": n.status, "attempts": n.attempts,
             "sent_at": n.sent_at.isoformat() if n.sent_at else None, "error": n.error}
            for n in session.scalars(select(Notification).where(
                Notification.incident_id == incident_id).order_by(Notification.id))]


def reason(code: str, **params: Any) -> dict[str, Any]:
    """A reason by its catalogue code, with its text in Chinese then English."""
    texts = [catalogue(lang).messages["commissioning_reasons"][code].format(**params)
             for lang in ("zh-CN", "en")]
    return {"code": code, "params": params, "text": " / ".join(texts)}


def verdict(points: list[dict[str, Any]], readings_error: str | None,
            outcome: str) -> tuple[str, list[dict[str, Any]]]:
    """``(green | red | pending, reasons)``: green needs every point reporting and the drill
    delivered; while the drill is on its way a missing reading may still come."""
    reasons = []
    if not points:
        reasons.append(reason("no_points"))
    if readings_error is not None:
        reasons.append(reason("readings_error", detail=readings_error))
    reasons += [reason("no_reading", name=p["name"], point=p["point"])
                for p in points if not p["ok"]]
    if outcome == UNREACHED:
        reasons.append(reason("unreached"))
    if outcome == PENDING:
        return PENDING, [*reasons, reason("pending")]
    return (RED, reasons) if reasons else (GREEN, [])


def compose(session: Session, run: CommissioningRun, first: list[FirstReading],
            readings_error: str | None, now: datetime) -> dict[str, Any]:
    """The report as JSON (the API's answer and what the printable page shows); the run keeps
    the points and verdict it last reported."""
    points = _points(session, run.gateway, first)
    result, reasons = verdict(points, readings_error, run.drill_outcome)
    enrolled = session.get(EnrolledGateway, run.gateway)
    installer = session.get(Staff, run.installer)
    run.points, run.verdict, run.checked_at = points, result, now
    return {
        "id": run.id, "gateway": run.gateway,
        "gateway_name": enrolled.name if enrolled is not None else None,
        "community": enrolled.community_id if enrolled is not None else None,
        "location": enrolled.location if enrolled is not None else None,
        "started_at": run.started_at.isoformat(), "started_by": run.started_by,
        "installer": run.installer,
        "installer_name": installer.name if installer is not None else None,
        "checked_at": now.isoformat(), "points": points, "readings_error": readings_error,
        "drill": {
            "incident": run.drill_incident_id, "outcome": run.drill_outcome,
            "reached_at": run.drill_reached_at.isoformat() if run.drill_reached_at else None,
            "reached_via": run.drill_reached_via,
            "acknowledged_at": (run.drill_acknowledged_at.isoformat()
                                if run.drill_acknowledged_at else None),
            "closed_at": run.drill_closed_at.isoformat() if run.drill_closed_at else None,
            # Server time from opening the drill to its delivery, and to the installer opening
            # it (the round trip).
            "delivery_s": _seconds(run.started_at, run.drill_reached_at),
            "round_trip_s": _seconds(run.started_at, run.drill_acknowledged_at),
            "deliveries": _deliveries(session, run.drill_incident_id)},
        "verdict": result, "reasons": reasons,
    }
