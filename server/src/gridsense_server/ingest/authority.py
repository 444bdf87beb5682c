"""Gateway authority: a message about a point is applied only when it comes from the gateway
the registry assigns that point to. The broker's ACL already keeps each gateway under its own
topic prefix (and the bridge checks the envelope names the same gateway); this decides what
a gateway may speak for. Ownership is the registry's (``PointDirectory``), never the shape of
the point's id.

- A point assigned to another gateway: the whole message is refused (an honest gateway never
  sends one) — dead-lettered with ``not_owner: ...``, counted, logged.
- A point the registry does not know: kept as an unassigned point (``UnassignedPoints``) up
  to a cap per gateway; beyond it the message is refused with ``unassigned_cap: ...``.

Telemetry, incidents and access events name points (an access event its reader's). Health
and status speak for the gateway itself; a snapshot is stored under its sender and served
only for that sender's incident; a command result answers the sender's own command.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gridsense_protocol import AccessEvent, Incident, Telemetry

from ..counters import Counters
from ..logs import kv
from ..registry.directory import PointDirectory
from .unassigned import UnassignedPoints

log = logging.getLogger(__name__)

_LOGGED_GATEWAYS_MAX = 10_000  # refusal log sampling is kept per gateway, this many at most


@dataclass(frozen=True, slots=True)
class Refusal:
    key: str  # the counter's last part: not_owner | unassigned_cap
    reason: str  # the dead letter's reason


# (actor, action, target, detail): the audit log's refusal sink, injected by the app.
AuditRefusal = Callable[[str, str, str, dict[str, Any]], None]


class GatewayAuthority:
    def __init__(self, directory: PointDirectory, unassigned: UnassignedPoints,
                 counters: Counters, audit: AuditRefusal | None = None) -> None:
        self.directory = directory
        self.unassigned = unassigned
        self.counters = counters
        self._audit = audit
        self._logged: dict[str, int] = {}

    def check(self, decoded: Any) -> Refusal | None:
        """Why ``decoded`` must not be applied, or None. One dict read per point it names."""
        gateway = decoded.gateway
        owners = self.directory.owners()
        if isinstance(decoded, Telemetry):
            unregistered: list[tuple[str, datetime]] | None = None
            for reading in decoded.readings:
                owner = owners.get(reading.point)
                if owner != gateway:
                    if owner is not None:
                        return self._not_owner(gateway, reading.point, owner)
                    if unregistered is None:
                        unregistered = []
                    unregistered.append((reading.point, reading.ts))
            if unregistered is None:
                return None
            return self._unassigned(gateway, unregistered)
        if isinstance(decoded, Incident | AccessEvent):
            point = decoded.point
            owner = owners.get(point)
            if owner == gateway:
                return None
            if owner is not None:
                return self._not_owner(gateway, point, owner)
            return self._unassigned(gateway, [(point, decoded.ts)])
        return None

    def _not_owner(self, gateway: str, point: str, owner: str) -> Refusal:
        self._log("message_refused_not_owner", gateway, point, owner=owner)
        return Refusal("not_owner",
                       f"not_owner: point {point} belongs to gateway {owner}, not {gateway}")

    def _unassigned(self, gateway: str,
                    sightings: list[tuple[str, datetime]]) -> Refusal | None:
        reason = self.unassigned.note(gateway, sightings)
        if reason is None:
            return None
        self._log("message_refused_unassigned_cap", gateway, sightings[0][0])
        return Refusal("unassigned_cap", reason)

    def _log(self, event: str, gateway: str, point: str, **fields: str) -> None:
        """One log line and one audit entry per refusal, sampled per gateway (the first ten,
        then every 1000th, each with the running count): a stolen password flooding forged
        messages must flood neither. Every refused message itself is a dead letter."""
        seen = self._logged.get(gateway, 0) + 1
        if len(self._logged) < _LOGGED_GATEWAYS_MAX or gateway in self._logged:
            self._logged[gateway] = seen
        if seen <= 10 or seen % 1000 == 0:
            log.warning(kv(event, gateway=gateway, point=point, refused=seen, **fields))
            if self._audit is not None:
                self._audit(f"gateway:{gateway}", f"mqtt.{event.removeprefix('message_')}",
                            point, {"refused_so_far": seen, **fields})
