"""Config versions of a gateway: create (validated, audited), read, compare; desired against
running; the outcomes gateways report."""

from __future__ import annotations

import difflib
from typing import Any

import yaml
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from gridsense_protocol import utc_now
from gridsense_protocol.gateway_config import ApplyState, config_hash

from ..audit import record
from ..db.remote_config_models import GatewayConfigApply, GatewayConfigState, GatewayConfigVersion
from .validate import check

HISTORY_MAX = 500


class Unchanged(ValueError):
    """The document is the one the gateway is already meant to run."""


class VersionView(BaseModel):
    version: int
    hash: str
    author: str
    reason: str
    created_at: Any


class ApplyView(BaseModel):
    version: int
    hash: str
    state: str
    reason: str | None
    running_hash: str | None
    reported_at: Any


class StatusView(BaseModel):
    gateway: str
    desired_version: int | None = None
    desired_hash: str | None = None
    pushed_version: int | None = None
    pushed_at: Any = None
    running_version: int | None = None
    running_hash: str | None = None
    in_sync: bool = False
    last_version: int | None = None
    last_state: str | None = None
    last_reason: str | None = None
    last_result_at: Any = None


def latest(session: Session, gateway: str) -> GatewayConfigVersion | None:
    return session.scalar(select(GatewayConfigVersion)
                          .where(GatewayConfigVersion.gateway == gateway)
                          .order_by(GatewayConfigVersion.version.desc()).limit(1))


def get_version(session: Session, gateway: str, version: int) -> GatewayConfigVersion:
    row = session.scalar(select(GatewayConfigVersion).where(
        GatewayConfigVersion.gateway == gateway, GatewayConfigVersion.version == version))
    if row is None:
        raise LookupError(f"gateway {gateway} has no config version {version}")
    return row


def create_version(session: Session, gateway: str, document: Any, author: str, reason: str,
                   address: str = "") -> GatewayConfigVersion:
    """A new desired version (validated; raises InvalidConfig, Unchanged). The pusher sends it."""
    check(gateway, document)
    digest = config_hash(document)
    previous = latest(session, gateway)
    if previous is not None and previous.hash == digest:
        raise Unchanged(f"gateway {gateway}: the same as version {previous.version}")
    row = GatewayConfigVersion(
        gateway=gateway, version=(previous.version if previous else 0) + 1, document=document,
        hash=digest, author=author, reason=reason[:500], created_at=utc_now())
    session.add(row)
    state = session.get(GatewayConfigState, gateway)
    if state is None:
        state = GatewayConfigState(gateway=gateway, pushed_version=0)
        session.add(state)
    state.desired_version, state.desired_hash = row.version, digest
    changes = diff(previous.document if previous else {}, document)
    record(session, author, "config.version", gateway,
           {"version": row.version, "hash": digest, "reason": reason[:500],
            "changes": [c for c in changes if c[:1] in "+-" and c[:3] not in ("+++", "---")][:40]},
           address)
    session.flush()
    return row


def diff(before: dict[str, Any], after: dict[str, Any], before_label: str = "before",
         after_label: str = "after") -> list[str]:
    """A unified diff of the two documents as sorted YAML (what a person reads)."""
    def lines(document: dict[str, Any]) -> list[str]:
        return yaml.safe_dump(document, sort_keys=True, allow_unicode=True).splitlines()
    return list(difflib.unified_diff(lines(before), lines(after), before_label, after_label,
                                     lineterm=""))


def status(session: Session, gateway: str) -> StatusView:
    state = session.get(GatewayConfigState, gateway)
    if state is None:
        return StatusView(gateway=gateway)
    return StatusView(
        gateway=gateway, desired_version=state.desired_version, desired_hash=state.desired_hash,
        pushed_version=state.pushed_version, pushed_at=state.pushed_at,
        running_version=state.running_version, running_hash=state.running_hash,
        in_sync=state.running_hash == state.desired_hash, last_version=state.last_version,
        last_state=state.last_state, last_reason=state.last_reason,
        last_result_at=state.last_result_at)


def history(session: Session, gateway: str,
            limit: int = HISTORY_MAX) -> tuple[list[VersionView], list[ApplyView]]:
    versions = session.scalars(select(GatewayConfigVersion)
                               .where(GatewayConfigVersion.gateway == gateway)
                               .order_by(GatewayConfigVersion.version.desc()).limit(limit))
    applies = session.scalars(select(GatewayConfigApply)
                              .where(GatewayConfigApply.gateway == gateway)
                              .order_by(GatewayConfigApply.id.desc()).limit(limit))
    return ([VersionView(version=v.version, hash=v.hash, author=v.author, reason=v.reason,
                         created_at=v.created_at) for v in versions],
            [ApplyView(version=a.version, hash=a.hash, state=a.state, reason=a.reason,
                       running_hash=a.running_hash, reported_at=a.reported_at)
             for a in applies])


def record_apply(session: Session, gateway: str, event_id: str,
                 report: dict[str, Any]) -> GatewayConfigApply | None:
    """Keep one outcome a gateway reported (None: a replay, or not an outcome)."""
    try:
        state_value = ApplyState(report.get("state"))
        version, digest = int(report["version"]), str(report["hash"])[:64]
    except (KeyError, TypeError, ValueError):
        return None
    if session.scalar(select(GatewayConfigApply.id)
                      .where(GatewayConfigApply.event_id == event_id)) is not None:
        return None
    reason = report.get("reason")
    running = report.get("running_hash")
    row = GatewayConfigApply(
        event_id=event_id, gateway=gateway, version=version, hash=digest,
        state=state_value.value, reason=str(reason)[:1000] if reason else None,
        running_hash=str(running)[:64] if running else None, reported_at=utc_now())
    session.add(row)
    state = session.get(GatewayConfigState, gateway)
    if state is not None:
        running_version = report.get("running_version")
        state.running_version = running_version if isinstance(running_version, int) else None
        state.running_hash = row.running_hash
        state.last_version, state.last_state = version, row.state
        state.last_reason, state.last_result_at = row.reason, row.reported_at
    return row
