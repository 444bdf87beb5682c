"""The server's one MQTT client module: a paho (MQTT 5) session per bridge, run in a network
thread of its own, handing decoded messages to the asyncio loop through a bounded hand-off and
sending acks and publications queued by the loop (paho is not thread-safe for sending).
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import ssl
import threading
from collections import deque
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from gridsense_protocol import Kind, shared_subscription
from gridsense_protocol import subscription as plain_subscription

from ..acks import AckToken, InboundMessage
from ..backoff import Backoff
from ..config import MqttConfig, mqtt_tls_context
from ..counters import Counters
from ..logs import kv
from .handoff import Handoff
from .inbound import InboundDecoder
from .mqtt_client import IngestClient, Publish

log = logging.getLogger(__name__)

KEEPALIVE_S = 30
# The broker drops (never sends) a packet larger than this, so no gateway can make the server
# allocate more; anything between MAX_PAYLOAD_BYTES and this arrives and is counted oversized.
MAX_PACKET_BYTES = 2 * 1024 * 1024
_HANDOFF_WAIT_S = 1.0
_SELECT_TIMEOUT_S = 1.0  # keepalive pings are sent from loop_misc between selects
# Packets parsed per wake-up from what was read ahead, before acks and publications get a turn.
_PACKETS_PER_TURN = 500
# Publications waiting for the network thread, and QoS 1 ones paho holds while the broker is
# away: a bound, not a working size (the server publishes a few commands, not a stream).
MAX_OUTGOING = 1000

Publication = tuple[str, bytes, bool]  # topic, payload, retain (always QoS 1)


class MqttBridge:
    """One persistent MQTT session: subscribes to ``kinds``, acks manually, publishes."""

    def __init__(
        self,
        config: MqttConfig,
        counters: Counters,
        *,
        client_id: str,
        kinds: tuple[Kind, ...],
    ) -> None:
        self.config = config
        self.counters = counters
        self.handoff: Handoff[InboundMessage] | None = None  # given by start()
        self.client_id = client_id
        self.kinds = kinds
        self.connected = threading.Event()
        self.subscribed = threading.Event()  # the broker acknowledged every subscription
        # Bumped by the network thread before each connect: acks carry the generation of the
        # connection their message arrived on.
        self.generation = 0
        self._stop = threading.Event()
        self._reading = threading.Event()
        self._reading.set()
        self._acks: deque[AckToken] = deque()
        self._outgoing: deque[Publication] = deque()
        # Wakes the network thread's select for acks and publications; made by start(), so
        # a bridge that never runs (the CLI's other verbs) holds no sockets.
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._decoder = InboundDecoder(counters, client_id)
        self._received: list[InboundMessage] = []  # parsed in this read, not handed on yet
        self._tls = None if config.tls is None else mqtt_tls_context(config.tls)
        self._tls_logged: str | None = None  # the failure told since the last good connect
        self._client = self._make_client()

    def _make_client(self) -> IngestClient:
        client = IngestClient(
            CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        if self.config.username is not None:
            password = None
            if self.config.password_file is not None:
                password = self.config.password_file.read_text(encoding="utf-8").strip()
            client.username_pw_set(self.config.username, password)
        if self._tls is not None:
            client.tls_set_context(self._tls)
        client.max_queued_messages_set(MAX_OUTGOING)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        client.on_publish_received = self._on_publish
        return client

    def topics(self) -> list[str]:
        return [
            shared_subscription(self.config.share_group, kind)
            if self.config.shared and kind is not Kind.STATUS
            else plain_subscription(kind)
            for kind in self.kinds
        ]

    # -- called from the asyncio loop --------------------------------------------------------

    def ack(self, tokens: list[AckToken]) -> None:
        """Queue acknowledgements; the network thread sends them (thread-safe)."""
        self._acks.extend(tokens)
        self._wake()

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> bool:
        """Queue a QoS 1 publication (thread-safe); False when too many are waiting."""
        if len(self._outgoing) >= MAX_OUTGOING:
            self.counters.inc("mqtt.publish_dropped")
            return False
        self._outgoing.append((topic, payload, retain))
        self._wake()
        return True

    def pause_reading(self) -> None:
        """Stop taking new messages (shutdown); acks still go out."""
        self._reading.clear()
        self._wake()

    def acks_pending(self) -> int:
        return len(self._acks)

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self, handoff: Handoff[InboundMessage]) -> None:
        self.handoff = handoff
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._thread = threading.Thread(target=self._run, name=f"mqtt-{self.client_id}",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Send the acks and publications queued so far, disconnect (the session stays on the
        broker)."""
        self._stop.set()
        self._wake()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        for wake in (self._wake_r, self._wake_w):
            if wake is not None:
                wake.close()
        self._wake_r = self._wake_w = None

    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            if self._wake_w is not None:
                self._wake_w.send(b"\0")

    def _run(self) -> None:
        """Connect, pump, and on any loss reconnect with capped jittered backoff."""
        backoff = Backoff(initial_s=0.5, cap_s=30.0)
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = self.config.session_expiry_s
        properties.ReceiveMaximum = self.config.receive_maximum
        properties.MaximumPacketSize = MAX_PACKET_BYTES
        host, port = self.config.host, self.config.port
        while not self._stop.is_set():
            self.generation += 1
            try:
                self._client.connect(host, port, KEEPALIVE_S, clean_start=False,
                                     properties=properties)
            except (OSError, ValueError) as exc:
                delay = backoff.next_delay()
                self.counters.inc("mqtt.connect_failures")
                self._connect_failed(exc, delay)
                self._stop.wait(delay)
                continue
            rc = self._pump(backoff)
            failure = self._tls.take_failure() if self._tls is not None else None
            if failure is not None and not self._stop.is_set():
                delay = backoff.next_delay()
                self._tls_failed(failure, delay)  # e.g. the broker refused our certificate
                self.connected.clear()
                self.subscribed.clear()
                self._stop.wait(delay)
                continue
            if self._stop.is_set() and rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
                self._send_acks()
                self._send_publications()
                self._client.disconnect()  # writes the queued acks, then DISCONNECT
            self.connected.clear()
            self.subscribed.clear()
            if self._stop.is_set():
                break
            delay = backoff.next_delay()
            log.warning(kv("mqtt_connection_lost", client_id=self.client_id, host=host,
                           port=port, rc=rc.name, retry_in_s=round(delay, 2)))
            self._stop.wait(delay)

    def _connect_failed(self, exc: BaseException, delay: float) -> None:
        if self._tls is not None and isinstance(exc, ssl.SSLError):
            self._tls.take_failure()  # this one, told here
            self._tls_failed(exc, delay)
            return
        log.warning(kv("mqtt_connect_failed", client_id=self.client_id, host=self.config.host,
                       port=self.config.port, error=repr(exc), retry_in_s=round(delay, 2)))

    def _tls_failed(self, exc: BaseException, delay: float) -> None:
        assert self._tls is not None
        host, port = self.config.host, self.config.port
        # The broker's certificate will not change by itself every few seconds: say why once
        # per reconnect series (and again if the reason changes), count every attempt.
        self.counters.inc("mqtt.tls_failures")
        reason = self._tls.describe(exc)
        if reason != self._tls_logged:
            self._tls_logged = reason
            log.error(kv("mqtt_tls_failed", client_id=self.client_id, host=host, port=port,
                         ca_file=str(self._tls.ca_file), reason=reason,
                         retry_in_s=round(delay, 2)))

    def _pump(self, backoff: Backoff) -> MQTTErrorCode:
        """paho's external-loop API around a select that also wakes for acks to send."""
        client = self._client
        sock = client.socket()
        if sock is None:
            return MQTTErrorCode.MQTT_ERR_NO_CONN
        wake = self._wake_r
        assert wake is not None
        while not self._stop.is_set():
            self._send_acks()
            if self.connected.is_set():
                self._send_publications()
            reading = self._reading.is_set()
            readers = [sock, wake] if reading else [wake]
            writers = [sock] if client.want_write() else []
            # Bytes already read ahead are not the socket's to report: do not wait for them.
            timeout = 0.0 if reading and client.buffered() else _SELECT_TIMEOUT_S
            try:
                readable, _, _ = select.select(readers, writers, [], timeout)
            except (OSError, ValueError):
                return MQTTErrorCode.MQTT_ERR_CONN_LOST
            if wake in readable:
                with contextlib.suppress(BlockingIOError):
                    wake.recv(4096)
            if reading and (sock in readable or client.buffered()):
                rc = self._read(client)
                if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                    return rc
            if client.want_write():
                rc = client.loop_write()
                if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                    return rc
            rc = client.loop_misc()
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                return rc
            if self.connected.is_set():
                backoff.reset()
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def _read(self, client: IngestClient) -> MQTTErrorCode:
        """Parse what arrived, then hand the messages on together."""
        try:
            return client.read_available(_PACKETS_PER_TURN)
        finally:
            received, self._received = self._received, []
            if received:
                self._hand_off(received)

    def _send_acks(self) -> None:
        acks = self._acks
        if not acks:
            return
        current = self.generation
        stale = other = 0
        mids: list[int] = []  # QoS 1, the server's subscriptions: one write for all of them
        while acks:
            generation, mid, qos = acks.popleft()
            if generation != current:
                stale += 1  # its connection is gone: the broker redelivers it instead
                continue
            if qos == 1:
                mids.append(mid)
            else:
                self._client.ack(mid, qos)
                other += 1
        self._client.ack_many(mids)
        sent = len(mids) + other
        if sent:
            self.counters.inc("mqtt.acks", sent)
        if stale:
            self.counters.inc("mqtt.acks_stale", stale)

    def _send_publications(self) -> None:
        outgoing = self._outgoing
        while outgoing:
            topic, payload, retain = outgoing.popleft()
            info = self._client.publish(topic, payload, qos=1, retain=retain)
            if info.rc == MQTTErrorCode.MQTT_ERR_QUEUE_SIZE:
                self.counters.inc("mqtt.publish_dropped")
            else:
                self.counters.inc("mqtt.published")

    # -- paho callbacks (network thread) -------------------------------------------------------

    def _on_connect(self, client: mqtt.Client, _userdata: Any, flags: Any, reason: Any,
                    _properties: Any) -> None:
        if reason.is_failure:
            self.counters.inc("mqtt.connect_refused")
            log.error(kv("mqtt_connect_refused", client_id=self.client_id, reason=str(reason)))
            return
        self._tls_logged = None
        topics = self.topics()
        client.subscribe([(topic, 1) for topic in topics])
        self.connected.set()
        self.counters.inc("mqtt.connects")
        log.info(kv("mqtt_connected", host=self.config.host, port=self.config.port,
                    client_id=self.client_id, tls=self._tls is not None,
                    session_present=flags.session_present,
                    subscriptions=",".join(topics)))

    def _on_disconnect(self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any,
                       _properties: Any) -> None:
        self.connected.clear()
        self.subscribed.clear()
        if not self._stop.is_set():
            self.counters.inc("mqtt.disconnects")
            log.warning(kv("mqtt_disconnected", client_id=self.client_id, reason=str(reason)))

    def _on_subscribe(self, _client: mqtt.Client, _userdata: Any, _mid: int,
                      reasons: list[Any], _properties: Any) -> None:
        failed = [str(r) for r in reasons if r.is_failure]
        if failed:
            self.counters.inc("mqtt.subscribe_refused")
            log.error(kv("mqtt_subscribe_refused", client_id=self.client_id,
                         reasons=",".join(failed)))
            return
        self.subscribed.set()

    def _on_message(self, _client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        # What the client's fast path left to paho (properties, QoS 2).
        self._on_publish(Publish(msg.topic, msg.payload, msg.mid, msg.qos, msg.dup))

    def _on_publish(self, msg: Publish) -> None:
        token = (self.generation, msg.mid, msg.qos) if msg.qos > 0 else None
        if msg.dup:
            self.counters.inc("mqtt.dup_deliveries")
        self._received.append(self._decoder.message(msg.topic, msg.payload, token, msg.mid))

    def _hand_off(self, messages: list[InboundMessage]) -> None:
        # With the hand-off at least as large as the Receive Maximum this never waits; it is
        # the second bound should the broker ignore ours.
        assert self.handoff is not None
        waited = False
        while messages:
            taken = self.handoff.put_many(messages, _HANDOFF_WAIT_S)
            messages = messages[taken:]
            if not messages:
                return
            if not waited:
                waited = True
                self.counters.inc("ingest.backpressure_waits")
            if self._stop.is_set():
                # Not acknowledged, so not lost: the broker redelivers them after the restart.
                self.counters.inc("ingest.not_taken_at_shutdown", len(messages))
                return
