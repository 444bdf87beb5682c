"""The server's ingest sources, whichever carries the gateways' messages: two MQTT sessions on
the broker, or two JetStream consumers on a NATS cluster (``ingest.source``). Either way the
first (events) also publishes what the server sends to gateways, and the second (telemetry)
keeps readings from holding up incidents. The rest of the server sees only this surface."""

from __future__ import annotations

import threading
from typing import Protocol

from gridsense_protocol import Kind

from ..acks import AckToken, InboundMessage
from ..broker.accounts import server_logins
from ..config import ServerConfig
from ..counters import Counters
from .handoff import Handoff

EVENT_KINDS = (Kind.INCIDENT, Kind.SNAPSHOT, Kind.STATUS, Kind.CMD_RESULT, Kind.ACCESS)
TELEMETRY_KINDS = (Kind.TELEMETRY, Kind.HEALTH)


class IngestSource(Protocol):
    client_id: str
    generation: int
    connected: threading.Event
    subscribed: threading.Event

    def start(self, handoff: Handoff[InboundMessage]) -> None: ...
    def ack(self, tokens: list[AckToken]) -> None: ...
    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> bool: ...
    def pause_reading(self) -> None: ...
    def acks_pending(self) -> int: ...
    def stop(self, timeout: float = 10.0) -> None: ...


def make_sources(config: ServerConfig, counters: Counters) -> list[IngestSource]:
    """[events, telemetry]. Each MQTT session logs in under its own name (= its client id),
    which the broker pins to that login: no other account can take either session over."""
    events_id, telemetry_id = server_logins(config.mqtt.client_id)
    if config.ingest.source == "nats":
        try:
            from .nats_source import NatsBridge  # nats-py: the server's optional nats extra
        except ImportError as exc:
            raise RuntimeError(
                "ingest.source: nats 需要 NATS 客户端：pip install 'gridsense-server[nats]' / "
                f"ingest.source: nats needs the NATS client ({exc})") from exc
        from .nats_subjects import stream_layout

        nats, window = config.nats, config.mqtt.receive_maximum
        return [
            NatsBridge(nats, counters, client_id=events_id, window=window, layout=stream_layout(
                nats.stream_prefix, nats.durable, "events", EVENT_KINDS)),
            NatsBridge(nats, counters, client_id=telemetry_id, window=window,
                       layout=stream_layout(nats.stream_prefix, nats.durable, "telemetry",
                                            TELEMETRY_KINDS)),
        ]
    from .bridge import MqttBridge

    telemetry_login = (None if config.mqtt.username is None
                       else server_logins(config.mqtt.username)[1])
    return [
        MqttBridge(config.mqtt, counters, client_id=events_id, kinds=EVENT_KINDS),
        MqttBridge(config.mqtt.model_copy(update={"username": telemetry_login}),
                   counters, client_id=telemetry_id, kinds=TELEMETRY_KINDS),
    ]
