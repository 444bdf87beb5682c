"""Turns what the agent has to say into protocol v1 envelopes and queues them in the outbox."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime

from gridsense_protocol import (
    AccessEvent,
    CommandResult,
    Envelope,
    GatewayState,
    Health,
    Incident,
    Kind,
    Reading,
    Status,
    Telemetry,
    encode,
    tag_snapshot,
    topic_for,
    utc_now,
)

from .. import agent_version
from ..events import AccessRecord, IncidentEvent
from ..health import HealthSnapshot
from .outbox import OutboundMessage, Outbox

# The envelope's fields come first in every encoded message (v, gateway, id, seq, ts,
# backfill): the flag sits within the first ~150 bytes, before any message-specific field.
_BACKFILL_FALSE = b',"backfill":false,'
_BACKFILL_TRUE = b',"backfill":true,'
_ENVELOPE_PREFIX_BYTES = 256
JPEG_MAGIC = b"\xff\xd8"


def mark_backfill(payload: bytes) -> bytes:
    """The same message with ``backfill: true`` (a snapshot JPEG has no envelope: unchanged)."""
    if payload.startswith(JPEG_MAGIC):
        return payload
    at = payload.find(_BACKFILL_FALSE, 0, _ENVELOPE_PREFIX_BYTES)
    if at >= 0:
        return payload[:at] + _BACKFILL_TRUE + payload[at + len(_BACKFILL_FALSE):]
    # Not the layout encode() produces (never expected): go through JSON to be safe.
    document = json.loads(payload)
    document["backfill"] = True
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


class Publisher:
    def __init__(self, gateway: str, outbox: Outbox) -> None:
        self.gateway = gateway
        self.outbox = outbox
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

    def _submit(self, build: Callable[[int], Envelope]) -> OutboundMessage:
        """Stored (and numbered) by the outbox; an incident is on disk when this returns."""
        return self.outbox.submit(lambda seq: self._outbound(build(seq)))

    def status(self, state: GatewayState) -> OutboundMessage:
        """Birth or will; thread-safe (called on paho's thread); retained, not queued."""
        message = Status(
            gateway=self.gateway, seq=self.outbox.last_seq, ts=utc_now(), state=state,
            agent_version=self.version, started_at=self.started_at,
        )
        return self._outbound(message, retain=True)

    def telemetry(self, readings: list[Reading]) -> OutboundMessage:
        # The envelope's ts is the newest reading's device time; each reading keeps its own.
        ts: datetime = max(r.ts for r in readings)
        return self._submit(
            lambda seq: Telemetry(gateway=self.gateway, seq=seq, ts=ts, readings=readings)
        )

    def incident(self, event: IncidentEvent, details: dict[str, object],
                 has_snapshot: bool = False) -> OutboundMessage:
        return self._submit(lambda seq: Incident(
            gateway=self.gateway, seq=seq, ts=event.ts, point=event.point,
            type=event.type, severity=event.severity, state=event.state, value=event.value,
            threshold=event.threshold, unit=event.unit[:16], message=event.message[:500],
            details=details, has_snapshot=has_snapshot,
        ))

    def snapshot(self, event_id: str, jpeg: bytes) -> OutboundMessage:
        """The incident's JPEG on .../snapshot/{event id}, in the incident lane. It is numbered
        like every message; the number rides in a JPEG comment (``tag_snapshot``) so the server
        records it and sees no gap."""
        return self.outbox.submit(lambda seq: OutboundMessage(
            topic=topic_for(self.gateway, Kind.SNAPSHOT, event_id),
            payload=tag_snapshot(jpeg, seq), kind=Kind.SNAPSHOT.value, event_id=event_id,
            seq=seq,
        ))

    def access(self, record: AccessRecord, offline: bool) -> OutboundMessage:
        return self._submit(lambda seq: AccessEvent(
            gateway=self.gateway, seq=seq, ts=record.ts, point=record.point, door=record.door,
            result=record.result, method=record.method, credential=record.credential,
            card=record.card, reason=record.reason, offline=offline,
            credentials_version=record.credentials_version, pass_id=record.pass_id,
        ))

    def command_result(self, command_id: str, ok: bool, result: dict[str, object] | None,
                       error: str | None = None) -> OutboundMessage:
        return self._submit(lambda seq: CommandResult(
            gateway=self.gateway, seq=seq, ts=utc_now(), command_id=command_id, ok=ok,
            result=result, error=None if error is None else error[:1000],
        ))

    def health(self, snapshot: HealthSnapshot) -> OutboundMessage:
        return self._submit(lambda seq: Health(
            gateway=self.gateway, seq=seq, ts=utc_now(),
            uptime_s=snapshot.uptime_s, cpu_percent=snapshot.cpu_percent,
            memory_rss_bytes=snapshot.memory_rss_bytes, disk_free_bytes=snapshot.disk_free_bytes,
            drivers=snapshot.drivers, counters=snapshot.counters,
        ))
