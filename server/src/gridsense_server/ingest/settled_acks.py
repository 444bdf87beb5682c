"""End-to-end acknowledgements: per gateway, the sequence ranges the server has settled (applied,
dead-lettered or refused — durable either way) go back on the gateway's own ``ack`` topic, a
few times a second, so the gateway deletes from its outbox only what the server holds. A
broker's PUBACK says only that the broker has a message; this says the server does.

A redelivered message is settled and named again: a lost ``Settled`` costs the gateway one
re-send, which the server's dedup makes harmless. A gateway that does not subscribe to the
topic (an older agent) is unaffected: the broker has no one to deliver to.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import time
from collections.abc import Callable

from gridsense_protocol import (
    INT64_MAX,
    Kind,
    Settled,
    encode,
    snapshot_seq,
    topic_for,
    utc_now,
)
from gridsense_protocol.messages import MAX_SETTLED_RANGES

from ..acks import InboundMessage, Range, SettledRanges
from ..counters import Counters
from ..logs import kv
from ..tasks import cancel_and_wait
from .dead_letters import gateway_of

log = logging.getLogger(__name__)

# Ranges waiting per gateway before the oldest are forgotten (the gateway re-sends those, and
# the re-send is settled and named again): the bound on memory when publishing is refused.
MAX_PENDING_RANGES = 4 * MAX_SETTLED_RANGES
# Gateways with ranges waiting: beyond it the newest settlements are not announced (counted).
MAX_PENDING_GATEWAYS = 100_000

Publish = Callable[[str, bytes], bool]  # topic, payload -> queued?


def settled_sequence(message: InboundMessage) -> tuple[str, int] | None:
    """The (gateway, seq) to announce for a settled message. A refused message that could not
    be decoded still names its seq when its payload does: the gateway must stop re-sending a
    message the server has set aside. The gateway comes from the topic (the broker's ACL binds
    it to the sender), never from the payload alone."""
    if message.sequence is not None:
        return message.sequence
    if message.reason is None or message.decoded is not None \
            or message.topic.endswith(f"/{Kind.STATUS.value}"):
        # Not a refusal at decode time; or a status, whose seq is the latest one the gateway
        # assigned, not its own: naming it would confirm a message never received.
        return None
    gateway = gateway_of(message.topic)
    if gateway is None:
        return None
    seq: object = None
    payload = message.payload
    if f"/{Kind.SNAPSHOT.value}/" in message.topic:
        seq = snapshot_seq(payload)
    elif len(payload) <= 256 * 1024:
        try:
            document = json.loads(payload)
        except (ValueError, RecursionError):
            return None
        if isinstance(document, dict):
            seq = document.get("seq")
    if isinstance(seq, int) and not isinstance(seq, bool) and 0 <= seq <= INT64_MAX:
        return (gateway, seq)
    return None


class SettledAcks:
    """Collects settled seqs per gateway; publishes them every ``interval_s``."""

    def __init__(self, publish: Publish, counters: Counters, interval_s: float = 0.25) -> None:
        self._publish = publish
        self.counters = counters
        self.interval_s = interval_s
        self._pending = SettledRanges()
        self._seq = itertools.count(int(time.time() * 1000))  # numbers the server's messages
        self._task: asyncio.Task[None] | None = None

    def add(self, message: InboundMessage) -> None:
        """``message`` is settled (called once per settlement, from the loop)."""
        sequence = settled_sequence(message)
        if sequence is None:
            return
        gateway, seq = sequence
        if gateway not in self._pending and len(self._pending) >= MAX_PENDING_GATEWAYS:
            self.counters.inc("acks.not_announced")
            return
        self._pending.add(gateway, seq)
        if self._pending.count(gateway) > MAX_PENDING_RANGES:
            self._pending.drop_oldest(gateway, MAX_PENDING_RANGES)
            self.counters.inc("acks.ranges_forgotten")

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="settled-acks")

    async def stop(self) -> None:
        """Announce what is settled so far, then stop."""
        await cancel_and_wait([self._task])
        self._task = None
        self.flush()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            self.flush()

    def flush(self) -> None:
        """One ``Settled`` per gateway with something new (split past the message's limit)."""
        pending, self._pending = self._pending, SettledRanges()
        for gateway in pending.gateways():
            ranges = pending.settled_ranges(gateway)
            for start in range(0, len(ranges), MAX_SETTLED_RANGES):
                chunk = ranges[start:start + MAX_SETTLED_RANGES]
                if not self._send(gateway, chunk):
                    # The bridge's queue is full: keep the rest for the next round.
                    for first, last in ranges[start:]:
                        self._pending.add_range(gateway, first, last)
                    break

    def _send(self, gateway: str, ranges: list[Range]) -> bool:
        message = Settled(gateway=gateway, seq=next(self._seq), ts=utc_now(), ranges=ranges)
        if not self._publish(topic_for(gateway, Kind.ACK), encode(message)):
            self.counters.inc("acks.publish_deferred")
            return False
        self.counters.inc("acks.published")
        self.counters.inc("acks.ranges", len(ranges))
        if log.isEnabledFor(logging.DEBUG):
            log.debug(kv("settled_published", gateway=gateway, ranges=len(ranges),
                         first=ranges[0][0], last=ranges[-1][1]))
        return True
