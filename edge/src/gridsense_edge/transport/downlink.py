"""Server -> gateway messages: the gateway's own ``config`` (retained: the broker hands over the
latest at once) and ``cmd`` topics, subscribed by every connection of the uplink at QoS 1; with
the persistent session the broker also keeps commands published while the gateway was away.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from gridsense_protocol import Command, ConfigUpdate, Kind, ProtocolError, decode, topic_for

from ..logs import log_event

log = logging.getLogger(__name__)

DownlinkCallback = Callable[[Command | ConfigUpdate], None]


class Downlink:
    def __init__(self, gateway: str, counters: dict[str, int]) -> None:
        self.topics = [topic_for(gateway, Kind.CONFIG), topic_for(gateway, Kind.CMD)]
        self.on_message: DownlinkCallback | None = None
        self.counters = counters  # the uplink's: health shows them as mqtt_downlink_*
        for name in ("downlink_received", "downlink_invalid", "downlink_errors"):
            counters.setdefault(name, 0)

    def received(self, topic: str, payload: bytes) -> None:
        self.counters["downlink_received"] += 1
        try:
            message = decode(topic, payload)
        except ProtocolError as exc:
            self.counters["downlink_invalid"] += 1
            log_event(log, "downlink_invalid", logging.WARNING, topic=topic, error=str(exc))
            return
        if not isinstance(message, Command | ConfigUpdate):
            self.counters["downlink_invalid"] += 1
            return
        handler = self.on_message
        if handler is None:
            return
        try:
            handler(message)
        except Exception as exc:  # a handler bug must not take the uplink down
            self.counters["downlink_errors"] += 1
            log_event(log, "downlink_handler_failed", logging.ERROR, exc_info=exc,
                      event_id=message.id, kind=message.kind.value)
