"""Turns what the agent has to say into protocol v1 envelopes and queues them in the outbox.

The one place that stamps gateway id, event id and ``seq``, so every message — telemetry,
incident, health, and the status messages built on paho's thread — draws from the same
per-gateway sequence.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from gridsense_protocol import (
    Envelope,
    GatewayState,
    Health,
    Incident,
    Reading,
    Status,
    Telemetry,
    encode,
    topic_for,
    utc_now,
)

from . import agent_version
from .health import HealthSnapshot
from .outbox import OutboundMessage, Outbox
from .rules import IncidentEvent
from .sequence import SequenceAllocator


class Publisher:
    def __init__(
        self,
        gateway: str,
        sequence: SequenceAllocator,
        outbox: Outbox,
        notify: Callable[[], None] = lambda: None,
    ) -> None:
        self.gateway = gateway
        self.sequence = sequence
        self.outbox = outbox
        self.notify = notify  # wakes the uplink
        self.started_at = utc_now()
        self.version = agent_version()[:32]

    def _outbound(self, message: Envelope, retain: bool = False) -> OutboundMessage:
        return OutboundMessage(
            topic=topic_for(message.gateway, message.kind),
            payload=encode(message),
            kind=message.kind.value,
            event_id=message.id,
            seq=message.seq,
            retain=retain,
        )

    def _submit(self, message: Envelope) -> OutboundMessage:
        outbound = self._outbound(message)
        self.outbox.submit(outbound)
        self.notify()
        return outbound

    def status(self, state: GatewayState) -> OutboundMessage:
        """Birth or will; thread-safe (called on paho's thread); retained, not queued."""
        message = Status(
            gateway=self.gateway, seq=self.sequence.next(), ts=utc_now(), state=state,
            agent_version=self.version, started_at=self.started_at,
        )
        return self._outbound(message, retain=True)

    def telemetry(self, readings: list[Reading]) -> OutboundMessage:
        # The envelope's ts is the newest reading's device time; each reading keeps its own.
        ts: datetime = max(r.ts for r in readings)
        message = Telemetry(
            gateway=self.gateway, seq=self.sequence.next(), ts=ts, readings=readings
        )
        return self._submit(message)

    def incident(self, event: IncidentEvent, details: dict[str, object]) -> Incident:
        message = Incident(
            gateway=self.gateway, seq=self.sequence.next(), ts=event.ts, point=event.point,
            type=event.type, severity=event.severity, state=event.state, value=event.value,
            threshold=event.threshold, unit=event.unit[:16], message=event.message[:500],
            details=details,
        )
        self._submit(message)
        return message

    def health(self, snapshot: HealthSnapshot) -> OutboundMessage:
        message = Health(
            gateway=self.gateway, seq=self.sequence.next(), ts=utc_now(),
            uptime_s=snapshot.uptime_s, cpu_percent=snapshot.cpu_percent,
            memory_rss_bytes=snapshot.memory_rss_bytes, disk_free_bytes=snapshot.disk_free_bytes,
            drivers=snapshot.drivers, counters=snapshot.counters,
        )
        return self._submit(message)
