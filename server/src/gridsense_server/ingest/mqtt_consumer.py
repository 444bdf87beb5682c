"""The MQTT side of ingest: paho-mqtt (MQTT 5) in a network thread of its own.

paho is several times faster than the asyncio wrappers at receiving, so the hot path stays in
its thread: each message is decoded and validated there, then handed to the asyncio loop
through a bounded Handoff. Invalid messages are counted per reason, logged with gateway, topic
and reason, and dropped; nothing a gateway sends can stop the consumer.

Telemetry, incidents and health come through shared subscriptions (several server processes
split the load); the retained status topic is subscribed plainly, because a broker never
delivers retained messages to shared subscriptions. The session is persistent (clean_start
False + a session expiry) so QoS 1 messages published while the server restarts wait for it.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from gridsense_protocol import Envelope, Kind, ProtocolError, decode, shared_subscription
from gridsense_protocol import subscription as plain_subscription

from ..backoff import Backoff
from ..config import MqttConfig
from ..counters import Counters
from ..logs import kv
from .classify import invalid_reason
from .handoff import Handoff

log = logging.getLogger(__name__)

KEEPALIVE_S = 30
SESSION_EXPIRY_S = 24 * 3600
SHARED_KINDS = (Kind.TELEMETRY, Kind.INCIDENT, Kind.HEALTH)
# The broker drops (never sends) a packet larger than this, so no gateway can make the server
# allocate more; anything between MAX_PAYLOAD_BYTES and this arrives and is counted oversized.
MAX_PACKET_BYTES = 2 * 1024 * 1024
_HANDOFF_WAIT_S = 1.0


def _log_sampled(n: int) -> bool:
    # A gateway stuck sending garbage must not flood the log: the first ten, then every 1000th.
    return n <= 10 or n % 1000 == 0


class MqttConsumer:
    def __init__(self, config: MqttConfig, handoff: Handoff[Envelope], counters: Counters) -> None:
        self.config = config
        self.handoff = handoff
        self.counters = counters
        self.connected = threading.Event()
        self.subscribed = threading.Event()  # the broker acknowledged every subscription
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._invalid_seen: Counter[tuple[str, str]] = Counter()
        self._client = self._make_client()

    def _make_client(self) -> mqtt.Client:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=self.config.client_id,
            protocol=mqtt.MQTTv5,
        )
        if self.config.username is not None:
            password = None
            if self.config.password_file is not None:
                password = self.config.password_file.read_text(encoding="utf-8").strip()
            client.username_pw_set(self.config.username, password)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        return client

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="mqtt-ingest", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        """Connect, run paho's loop, and on any loss reconnect with capped jittered backoff."""
        backoff = Backoff(initial_s=0.5, cap_s=30.0)
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = SESSION_EXPIRY_S
        properties.MaximumPacketSize = MAX_PACKET_BYTES
        host, port = self.config.host, self.config.port
        while not self._stop.is_set():
            try:
                self._client.connect(host, port, KEEPALIVE_S, clean_start=False,
                                     properties=properties)
            except (OSError, ValueError) as exc:
                delay = backoff.next_delay()
                self.counters.inc("mqtt.connect_failures")
                log.warning(kv("mqtt_connect_failed", host=host, port=port, error=repr(exc),
                               retry_in_s=round(delay, 2)))
                self._stop.wait(delay)
                continue
            rc = MQTTErrorCode.MQTT_ERR_SUCCESS
            while not self._stop.is_set() and rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
                rc = self._client.loop(timeout=1.0)
                if self.connected.is_set():
                    backoff.reset()
            self.connected.clear()
            self.subscribed.clear()
            if self._stop.is_set():
                break
            delay = backoff.next_delay()
            log.warning(kv("mqtt_connection_lost", host=host, port=port, rc=rc.name,
                           retry_in_s=round(delay, 2)))
            self._stop.wait(delay)
        self._client.disconnect()
        self.connected.clear()
        self.subscribed.clear()

    # -- paho callbacks (network thread) -------------------------------------------------------

    def _on_connect(self, client: mqtt.Client, _userdata: Any, flags: Any, reason: Any,
                    _properties: Any) -> None:
        if reason.is_failure:
            self.counters.inc("mqtt.connect_refused")
            log.error(kv("mqtt_connect_refused", client_id=self.config.client_id,
                         reason=str(reason)))
            return
        topics = [shared_subscription(self.config.share_group, kind) for kind in SHARED_KINDS]
        topics.append(plain_subscription(Kind.STATUS))
        client.subscribe([(topic, 1) for topic in topics])
        self.connected.set()
        self.counters.inc("mqtt.connects")
        log.info(kv("mqtt_connected", host=self.config.host, port=self.config.port,
                    client_id=self.config.client_id, session_present=flags.session_present,
                    subscriptions=",".join(topics)))

    def _on_disconnect(self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any,
                       _properties: Any) -> None:
        self.connected.clear()
        self.subscribed.clear()
        if not self._stop.is_set():
            self.counters.inc("mqtt.disconnects")
            log.warning(kv("mqtt_disconnected", reason=str(reason)))

    def _on_subscribe(self, _client: mqtt.Client, _userdata: Any, _mid: int,
                      reasons: list[Any], _properties: Any) -> None:
        failed = [str(r) for r in reasons if r.is_failure]
        if failed:
            self.counters.inc("mqtt.subscribe_refused")
            log.error(kv("mqtt_subscribe_refused", reasons=",".join(failed)))
            return
        self.subscribed.set()

    def _on_message(self, _client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            self._ingest(msg.topic, msg.payload)
        except Exception:
            # A bug in our own code must not kill paho's thread (and with it, all ingest).
            self.counters.inc("ingest.errors")
            log.exception(kv("ingest_error", topic=msg.topic))

    def _ingest(self, topic: str, payload: bytes) -> None:
        try:
            message = decode(topic, payload)
        except ProtocolError as exc:
            reason = invalid_reason(exc, len(payload))
            self.counters.inc(f"ingest.invalid.{reason}")
            key = (exc.gateway or "?", reason)
            self._invalid_seen[key] += 1
            if len(self._invalid_seen) > 10_000:
                self._invalid_seen.clear()  # bounded
            if _log_sampled(self._invalid_seen[key]):
                log.warning(kv("message_invalid", gateway=exc.gateway, topic=topic,
                               reason=reason, field=exc.field or None, detail=exc.reason[:300],
                               bytes=len(payload), seen=self._invalid_seen[key]))
            return
        if not isinstance(message, Envelope):
            return  # snapshots are not subscribed to yet
        self._hand_off(message)

    def _hand_off(self, message: Envelope) -> None:
        waited = False
        while not self.handoff.put(message, _HANDOFF_WAIT_S):
            if not waited:
                waited = True
                self.counters.inc("ingest.backpressure_waits")
            if self._stop.is_set():
                # Shutting down with the loop no longer consuming: the only drop there is.
                self.counters.inc("ingest.dropped")
                log.error(kv("ingest_dropped_at_shutdown", gateway=message.gateway,
                             event=message.id, kind=message.kind.value))
                return
