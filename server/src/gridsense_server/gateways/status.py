"""Gateway state: online/offline from the retained status topic (birth + last will), the last
Health message, and when each gateway was last heard from.

Status messages are applied in arrival order, not by sequence number: the last will is
registered before the birth message is sent, so it carries the OLDER sequence number and
device time, yet it is the newer fact. MQTT delivers one topic's messages in order.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from gridsense_protocol import Health, Status, utc_now

from ..config import LifecycleConfig
from ..counters import Counters
from ..db.models import Gateway, Incident, Point
from ..db.retry import retry_transient
from ..live.hub import LiveHub
from ..logs import kv
from ..workorders.noise import gateway_came_back, gateway_went_offline
from ..workorders.views import IncidentView
from .views import GatewayView

log = logging.getLogger(__name__)
_MAX_TRACKED = 100_000  # bound on gateways remembered between flushes
_Live = tuple[frozenset[str], dict[str, Any]]  # the grids a gateway serves, its row for the page


def _later(a: datetime | None, b: datetime) -> datetime:
    return b if a is None or b > a else a


def gateway_row(session: Session, gateway: str) -> Gateway:
    """The gateway's row, locked for this transaction (created if it is new)."""
    row = session.get(Gateway, gateway, with_for_update=True)
    if row is None:
        row = Gateway(id=gateway, state="online", state_changed_at=utc_now(), seq_redelivered=0)
        session.add(row)
        session.flush()  # a concurrent creator fails here (IntegrityError), not at commit
    return row


class GatewayService:
    def __init__(self, factory: sessionmaker[Session], counters: Counters,
                 hub: LiveHub | None = None, lifecycle: LifecycleConfig | None = None) -> None:
        self.factory = factory
        self.counters = counters
        self.hub = hub
        self.lifecycle = lifecycle or LifecycleConfig()
        self._seen: dict[str, datetime] = {}

    def touch(self, gateway: str, ts: datetime) -> None:
        """Hot path (every telemetry message): remember the latest device time in memory."""
        current = self._seen.get(gateway)
        if current is None:
            if len(self._seen) >= _MAX_TRACKED:
                return
            self._seen[gateway] = ts
        elif ts > current:
            self._seen[gateway] = ts

    async def apply_status(self, message: Status) -> None:
        changed, live = await retry_transient(
            lambda: self._in_transaction(self._status, message), self.counters, "gateways")
        # Published after commit: the gateway_offline incident it opened or cleared.
        if changed is not None and self.hub is not None:
            self.hub.publish(changed["grid"], {"type": "incident", "event": "gateway_offline",
                                               "incident": changed})
        self._publish_gateway("status", live)

    async def apply_health(self, message: Health) -> None:
        live = await retry_transient(lambda: self._in_transaction(self._health, message),
                                     self.counters, "gateways")
        self._publish_gateway("health", live)

    def _publish_gateway(self, event: str, live: _Live | None) -> None:
        """The gateways page's row, to whoever sees a grid the gateway serves (control: all)."""
        if live is not None and self.hub is not None:
            grids, view = live
            self.hub.publish_any(grids, {"type": "gateway", "event": event, "gateway": view})

    def _live(self, session: Session, row: Gateway) -> _Live | None:
        if self.hub is None or not self.hub.subscribers:
            return None  # nobody watching: spare the query
        grids = frozenset(session.scalars(
            select(Point.grid_id).distinct().where(Point.gateway == row.id)))
        return grids, GatewayView.of(row, None).live()

    async def flush_seen(self) -> None:
        seen, self._seen = self._seen, {}
        if seen:
            await asyncio.to_thread(self._in_transaction, self._seen_rows, seen)

    async def run_flusher(self, interval_s: float = 5.0) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.flush_seen()
            except Exception:
                self.counters.inc("gateways.flush_errors")
                log.exception(kv("gateway_last_seen_flush_failed"))

    def _in_transaction(self, apply: Any, arg: Any) -> Any:
        for attempt in (1, 2):
            try:
                with self.factory.begin() as session:
                    return apply(session, arg)
            except IntegrityError:
                if attempt == 2:  # two processes created the same gateway row; re-read once
                    raise

    def _status(self, session: Session,
                message: Status) -> tuple[dict[str, Any] | None, _Live | None]:
        """Apply a status; returns the gateway_offline incident it opened or cleared, and the
        row for the stream."""
        row = gateway_row(session, message.gateway)
        if message.agent_version is not None:  # the last will carries none: keep the birth's
            row.agent_version = message.agent_version
        changed = None
        state = message.state.value
        if row.state != state or row.last_status_seq is None:
            row.state_changed_at = utc_now()
            self.counters.inc(f"gateways.{state}")
            log.info(kv(f"gateway_{state}", gateway=message.gateway, seq=message.seq,
                        ts=message.ts.isoformat(), version=message.agent_version))
            changed = self._gateway_incident(session, message, state)
        row.state = state
        row.last_status_seq = message.seq
        row.last_seen_at = _later(row.last_seen_at, message.ts)
        return changed, self._live(session, row)

    def _gateway_incident(self, session: Session, message: Status,
                          state: str) -> dict[str, Any] | None:
        incident: Incident | None
        if state == "offline":
            incident = gateway_went_offline(session, message.gateway, message.ts, utc_now(),
                                            self.lifecycle)
        else:
            incident = gateway_came_back(session, message.gateway, message.ts)
        if incident is None:
            return None
        session.flush()
        return IncidentView.of(incident).to_json()

    def _health(self, session: Session, message: Health) -> _Live | None:
        row = gateway_row(session, message.gateway)
        row.last_health = message.model_dump(mode="json")
        row.last_seen_at = _later(row.last_seen_at, message.ts)
        return self._live(session, row)

    def _seen_rows(self, session: Session, seen: dict[str, datetime]) -> None:
        for gateway, ts in seen.items():
            row = gateway_row(session, gateway)
            row.last_seen_at = _later(row.last_seen_at, ts)
