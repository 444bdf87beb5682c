"""An installer's draft configuration for a gateway: the devices discovery found, each assigned
to a point (name, grid, place, alarm thresholds). The server checks what it owns (the point
ids, their grids, who may use them) and the draft's shape; the gateway's own config models
check the rest when the gateway loads it. Saving registers the points."""

from __future__ import annotations

import copy
import math
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from gridsense_protocol.messages import JsonObject, NoNul
from gridsense_protocol.topics import ID_PATTERN

from ..db.commissioning_models import InstallationDraft
from ..db.models import Grid, Point
from ..registry.store import upsert_points

MAX_DEVICES = 500
Metric = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,47}$")]


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("a threshold must be a finite number")
    return value


class PointAssignment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    device: Annotated[int, Field(ge=0, lt=MAX_DEVICES)]  # index in the draft's devices
    id: Annotated[str, Field(pattern=f"^{ID_PATTERN}$")]
    name: Annotated[str, Field(min_length=1, max_length=200), NoNul]
    grid: Annotated[str, Field(pattern=f"^{ID_PATTERN}$")]
    location: Annotated[str, Field(max_length=200), NoNul] | None = None
    # Metric -> the value above which the gateway raises over_temperature (or its metric's
    # alarm): proposed by the device profile, confirmed by the installer.
    thresholds: Annotated[dict[Metric, Annotated[float, AfterValidator(_finite)]],
                          Field(max_length=8)] = {}


class InstallationBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # The draft gateway configuration (``gridsense-edge discover`` output, as JSON).
    config: JsonObject = {}
    points: Annotated[list[PointAssignment], Field(max_length=MAX_DEVICES)] = []


class DraftError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _devices(config: dict[str, Any], gateway: str) -> list[dict[str, Any]]:
    section = config.get("gateway")
    if section is not None and (not isinstance(section, dict) or section.get("id") != gateway):
        raise DraftError(422, f"config.gateway.id 须为 {gateway} / config.gateway.id must be "
                              f"{gateway!r}")
    devices = config.get("devices", [])
    if not isinstance(devices, list) or len(devices) > MAX_DEVICES:
        raise DraftError(422, f"config.devices 须为列表（至多 {MAX_DEVICES} 项）/ config.devices "
                              f"must be a list of at most {MAX_DEVICES}")
    for n, device in enumerate(devices):
        if not isinstance(device, dict) or not isinstance(device.get("type"), str):
            raise DraftError(422, f"config.devices[{n}] 缺少 type / config.devices[{n}] needs "
                                  "a type")
    return devices


def _check(session: Session, gateway: str, body: InstallationBody, devices: list[Any],
           grids: frozenset[str] | None) -> None:
    for key, label in ((lambda a: a.id, "point id"), (lambda a: a.device, "device")):
        values = [key(a) for a in body.points]
        twice = sorted({str(v) for v in values if values.count(v) > 1})
        if twice:
            raise DraftError(422, f"重复的{'测点' if label == 'point id' else '设备'} / "
                                  f"{label} {twice[0]} is assigned twice")
    for n, assignment in enumerate(body.points):
        where = f"points[{n}]"
        if assignment.device >= len(devices):
            raise DraftError(422, f"{where}.device：草稿中没有第 {assignment.device} 个设备 / "
                                  f"the draft has no device {assignment.device}")
        if session.get(Grid, assignment.grid) is None:
            raise DraftError(422, f"{where}.grid：没有网格 {assignment.grid} / no grid "
                                  f"{assignment.grid!r}")
        if grids is not None and assignment.grid not in grids:
            raise DraftError(403, f"{where}.grid：网格 {assignment.grid} 不归您管理 / grid "
                                  f"{assignment.grid!r} is not one of yours")
    owners = dict(session.execute(select(Point.id, Point.gateway).where(
        Point.id.in_([a.id for a in body.points]))).all())
    for assignment in body.points:
        owner = owners.get(assignment.id)
        if owner is not None and owner != gateway:
            raise DraftError(409, f"测点 {assignment.id} 已属于网关 {owner} / point "
                                  f"{assignment.id!r} belongs to gateway {owner!r}")


def assemble(config: dict[str, Any], gateway: str,
             points: list[PointAssignment]) -> dict[str, Any]:
    """The configuration to give the gateway: the draft with each assigned device's point and
    one over_temperature rule per threshold (a re-save replaces the rules it made)."""
    document = copy.deepcopy(config)
    document.setdefault("gateway", {"id": gateway})
    devices = document.setdefault("devices", [])
    assigned = {a.id for a in points}
    rules = [r for r in document.get("rules", [])
             if not (isinstance(r, dict) and r.get("type") == "over_temperature"
                     and len(r.get("points") or []) == 1 and r["points"][0] in assigned)]
    for assignment in points:
        devices[assignment.device]["point"] = assignment.id
        rules += [{"type": "over_temperature", "points": [assignment.id], "metric": metric,
                   "threshold": value} for metric, value in sorted(assignment.thresholds.items())]
    if rules:
        document["rules"] = rules
    return document


def save_draft(session: Session, gateway: str, body: InstallationBody,
               grids: frozenset[str] | None, actor: str, now: datetime) -> dict[str, Any]:
    """Validate, register the points and keep the configuration (the caller's transaction);
    raises DraftError naming what is wrong and where."""
    devices = _devices(body.config, gateway)
    _check(session, gateway, body, devices, grids)
    document = assemble(body.config, gateway, body.points)
    counts = upsert_points(session, [
        {"id": a.id, "gateway": gateway, "grid_id": a.grid, "name": a.name,
         "location": a.location} for a in body.points]) if body.points else {}
    row = session.get(InstallationDraft, gateway)
    if row is None:
        session.add(InstallationDraft(gateway=gateway, document=document, saved_by=actor,
                                      saved_at=now))
    else:
        row.document, row.saved_by, row.saved_at = document, actor, now
    return {"gateway": gateway, "config": document, "registry": counts,
            "points": [a.model_dump() for a in body.points]}


def stored_draft(session: Session, gateway: str) -> InstallationDraft | None:
    return session.get(InstallationDraft, gateway)
