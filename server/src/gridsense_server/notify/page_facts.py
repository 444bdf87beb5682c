"""Everything a page tells its reader, read from the database when the page is sent: the
place by its registry name, the grid, what happened, the deadline, who else was paged."""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..db.models import Grid, Incident, Notification, Point, Staff
from ..workorders.escalation_steps import StepName
from .messages import Message, headline, type_zh

DRILL_WHY = "测试通知"
_LINK = re.compile(r"https?://\S+/link/\S+")


def _why(step: str, loop: int) -> str:
    name = StepName.parse(step)
    if name.kind == "drill":
        return DRILL_WHY
    if name.kind == "remind":
        return "处理提醒"
    if name.kind == "page" and (name.index or loop):
        return f"超时升级（第 {name.index + 1} 级，第 {loop + 1} 轮）"
    return "新告警" if name.kind == "page" else "通知"


def _local(moment: datetime | None, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%m-%d %H:%M") if moment else "—"


def messages_for(session: Session, rows: list[Notification], zone: ZoneInfo
                 ) -> dict[int, Message]:
    """One message per delivery row (read-only; a few queries per batch, not per row)."""
    incident_ids = {r.incident_id for r in rows}
    incidents = {i.id: i for i in session.scalars(
        select(Incident).where(Incident.id.in_(incident_ids)))}
    points = {p.id: p for p in session.scalars(
        select(Point).where(Point.id.in_({i.point_id for i in incidents.values()})))}
    paged: dict[tuple[str, str, int], set[str]] = defaultdict(set)
    for incident_id, step, loop, recipient in session.execute(
            select(Notification.incident_id, Notification.step, Notification.loop,
                   Notification.recipient).where(Notification.incident_id.in_(incident_ids))):
        paged[(incident_id, step, loop)].add(recipient)
    people = {r for group in paged.values() for r in group}
    names = dict(session.execute(select(Staff.username, Staff.name)
                                 .where(Staff.username.in_(people))).all())
    grid_ids = {i.grid_id for i in incidents.values() if i.grid_id}
    grid_ids |= {r.removeprefix("grid:") for r in people if r.startswith("grid:")}
    grids = grid_labels(session, grid_ids)
    messages = {}
    for row in rows:
        incident = incidents.get(row.incident_id)
        if incident is None:
            continue
        others = sorted(paged[(row.incident_id, row.step, row.loop)] - {row.recipient})
        who = [f"{grids.get(o[5:], o[5:])}群" if o.startswith("grid:") else names.get(o, o)
               for o in others]
        found = _LINK.search(row.body)
        messages[row.id] = page_message(incident, points.get(incident.point_id),
                                        grids.get(incident.grid_id or ""),
                                        _why(row.step, row.loop), who,
                                        found.group(0) if found else None, zone)
    return messages


def grid_labels(session: Session, grid_ids: set[str]) -> dict[str, str]:
    """A micro-grid by its grid and its own name (第一网格 1-3号楼): the worker knows both."""
    rows = {g.id: g for g in session.scalars(select(Grid).where(Grid.id.in_(grid_ids)))}
    parent_ids = {g.parent_id for g in rows.values() if g.parent_id} - set(rows)
    parents = dict(session.execute(select(Grid.id, Grid.name)
                                   .where(Grid.id.in_(parent_ids))).all()) if parent_ids else {}
    parents |= {g.id: g.name for g in rows.values()}
    return {g.id: f"{parents[g.parent_id]} {g.name}" if g.parent_id in parents else g.name
            for g in rows.values()}


def page_message(incident: Incident, point: Point | None, grid_name: str | None, why: str,
                 others: list[str], link: str | None, zone: ZoneInfo) -> Message:
    place = point.name if point is not None else incident.point_id
    if incident.drill:  # a test of the paging: what to do is nothing but open it
        return Message(headline(incident.severity, why, place, incident.type), "info", (
            ("网关", incident.gateway), ("地点", place),
            ("发送时间", _local(incident.opened_at, zone)),
            ("说明", "这是安装调试演练，无需处理；打开链接即确认收到"),
        ), link)
    what = type_zh(incident.type)
    happened = what
    unit = f" {incident.unit}" if incident.unit else ""
    if incident.value is not None:
        happened += f"，读数 {incident.value:g}{unit}"
    if incident.threshold is not None:
        happened += f"，阈值 {incident.threshold:g}{unit}"
    if incident.message:
        happened += f"（{incident.message}）"
    if incident.count > 1:
        happened += f"，共 {incident.count} 次"
    waiting = incident.state not in ("accepted", "resolved", "closed", "invalid")
    deadline = (f"{_local(incident.accept_due_at, zone)} 前受理" if waiting
                else f"{_local(incident.resolve_due_at, zone)} 前处理完毕")
    fields = (
        ("地点", place),
        ("网格", grid_name or incident.grid_id or "未分配网格"),
        ("位置", (point.location if point is not None else None) or "—"),
        ("情况", happened),
        ("发生时间", _local(incident.opened_at, zone)),
        ("期限", deadline),
        ("同时通知", "、".join(others) or "无"),
    )
    return Message(headline(incident.severity, why, place, incident.type), incident.severity,
                   fields, link)
