"""One credential granted at two places too far apart to walk between: ``card_two_places``.

Each gateway sees its own doors only, so a cloned card used in building 1 and building 2 within
a minute is invisible at the edge. The server sees every access event: it keeps, per
credential, its recent grants (bounded: ``max_credentials`` credentials, the least recently
used dropped first, and per credential only grants within the window), and when one is granted
at a door of another gateway within ``window_s`` of a grant elsewhere it opens (or repeats) a
``card_two_places`` incident at the later door's point, on the same path as the server's other
incidents: silences, the SLA clocks and escalation of ``on_opened``, the live stream.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from gridsense_protocol import AccessEvent, AccessResult, AlarmState, new_event_id, utc_now

from ..config import CardCorrelationConfig, LifecycleConfig
from ..counters import Counters
from ..db.models import FINAL_STATES, Incident, Point, Silence
from ..live.hub import LiveHub
from ..logs import kv
from ..workorders.noise import silenced
from ..workorders.transitions import on_opened
from ..workorders.views import IncidentView

log = logging.getLogger(__name__)

CARD_TWO_PLACES = "card_two_places"


@dataclass(frozen=True, slots=True)
class Grant:
    ts: datetime
    gateway: str
    point: str
    door: str
    event_id: str
    backfill: bool = False  # replayed after an outage: old news, shown to control only

    @classmethod
    def of(cls, event: AccessEvent) -> Grant:
        return cls(event.ts, event.gateway, event.point, event.door, event.id, event.backfill)


class RecentGrants:
    """Per credential, its grants within the window (``max_credentials`` credentials at most,
    the least recently used dropped first). Also what the access harness judges."""

    def __init__(self, window_s: float, max_credentials: int) -> None:
        self.window = timedelta(seconds=window_s)
        self.max_credentials = max_credentials
        self.evicted = 0
        self._recent: OrderedDict[str, list[Grant]] = OrderedDict()

    def pair(self, event: AccessEvent) -> tuple[Grant, str] | None:
        """Remember a grant; (the nearest grant of the same credential at another gateway
        within the window, the credential) when there is one. An event id already held (a
        redelivery) changes nothing."""
        key = event.credential or event.card
        if event.result is not AccessResult.GRANTED or key is None:
            return None
        grants = self._recent.pop(key, [])
        self._recent[key] = grants
        if any(g.event_id == event.id for g in grants):
            return None
        newest = max([event.ts, *(g.ts for g in grants)])
        grants[:] = [g for g in grants if newest - g.ts <= self.window]
        other = min((g for g in grants if g.gateway != event.gateway
                     and abs(event.ts - g.ts) <= self.window),
                    key=lambda g: abs(event.ts - g.ts), default=None)
        grants.append(Grant.of(event))
        while len(self._recent) > self.max_credentials:
            self._recent.popitem(last=False)
            self.evicted += 1
        return None if other is None else (other, key)


class CardCorrelator:
    def __init__(self, factory: sessionmaker[Session], hub: LiveHub, counters: Counters,
                 lifecycle: LifecycleConfig, config: CardCorrelationConfig | None = None
                 ) -> None:
        self.factory = factory
        self.hub = hub
        self.counters = counters
        self.lifecycle = lifecycle
        self.config = config or CardCorrelationConfig()
        self.grants = RecentGrants(self.config.window_s, self.config.max_credentials)

    async def observe(self, events: list[AccessEvent]) -> None:
        """Called with every batch the access log stored (duplicates included: an event id
        already held is ignored). Never raises: a failure is counted and logged."""
        if not self.config.enabled:
            return
        pairs = [pair for event in events if (pair := self._pair(event)) is not None]
        for earlier, later in pairs:
            try:
                change = await asyncio.to_thread(self._open, earlier, later)
            except Exception:
                self.counters.inc("access.correlation_errors")
                log.exception(kv("card_two_places_failed", event=later[1].event_id))
                continue
            if change is not None:
                grid, event, view = change
                self.hub.publish(grid, {"type": "incident", "event": event, "incident": view},
                                 live=not view.get("suppressed") and event != "backfilled")

    def _pair(self, event: AccessEvent) -> tuple[Grant, tuple[str, Grant]] | None:
        """(the other place's grant, (credential, this one)) when ``event`` pairs."""
        evicted = self.grants.evicted
        found = self.grants.pair(event)
        self.counters.inc("access.correlation_evicted", self.grants.evicted - evicted)
        if found is None:
            return None
        self.counters.inc("access.card_two_places")
        return found[0], (found[1], Grant.of(event))

    def _open(self, other: Grant, this: tuple[str, Grant]
              ) -> tuple[str | None, str, dict[str, Any]]:
        credential, grant = this
        credential = credential[:16]  # a card hash when no credential matched: its start
        first, second = sorted((other, grant), key=lambda g: g.ts)
        apart = abs((second.ts - first.ts).total_seconds())
        message = (f"同一凭证 {credential} 在 {apart:.0f} 秒内于两处通行：{first.door}"
                   f"（{first.gateway}）与 {second.door}（{second.gateway}），疑似复制卡 / "
                   f"one credential granted at two places {apart:.0f} s apart: {first.door} "
                   f"({first.gateway}) and {second.door} ({second.gateway}); a cloned card?")
        now = utc_now()
        with self.factory.begin() as session:
            incident = session.scalars(select(Incident).where(
                Incident.point_id == second.point, Incident.type == CARD_TWO_PLACES,
                Incident.state.not_in(FINAL_STATES)).with_for_update()).first()
            if incident is not None:
                incident.count += 1
                incident.alarm = AlarmState.ACTIVE.value
                incident.last_seen_at = max(incident.last_seen_at, second.ts)
                incident.message, incident.value = message[:500], apart
                event = "updated"
            else:
                point = session.get(Point, second.point)
                incident = Incident(
                    id=new_event_id(), point_id=second.point,
                    grid_id=point.grid_id if point is not None else None,
                    gateway=second.gateway, type=CARD_TWO_PLACES,
                    severity=self.config.severity, state="new",
                    alarm=AlarmState.ACTIVE.value, opened_at=second.ts,
                    last_seen_at=second.ts, count=1, value=apart,
                    threshold=self.config.window_s, unit="s", message=message[:500],
                    first_event_id=second.event_id, state_changed_at=now, closed_at=None,
                    backfilled=first.backfill or second.backfill)
                incident.suppressed = silenced(
                    session.scalars(select(Silence).where(Silence.ends_at > now)), incident)
                session.add(incident)
                on_opened(session, incident, self.lifecycle, now)
                event = "opened"
            session.flush()
            view = IncidentView.of(incident).to_json()
            grid = incident.grid_id
        log.warning(kv(f"card_two_places_{event}", incident=view["id"], credential=credential,
                       first=first.event_id, second=second.event_id, apart_s=round(apart, 1)))
        # Replayed after an outage: old news, as the incident path says for gateways' events.
        return grid, ("backfilled" if first.backfill or second.backfill else event), view
