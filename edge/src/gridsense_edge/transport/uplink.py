"""MQTT uplink: drains the outbox to the broker in order, announces the gateway online/offline."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from gridsense_protocol import GatewayState
from gridsense_protocol.tls import ClientTls

from ..backoff import backoff_delay
from ..logs import log_event
from .confirmations import Confirmations, EndToEnd
from .downlink import Downlink
from .outbox import OutboundMessage, Outbox
from .probe import MQTT_PROTOCOLS
from .publisher import mark_backfill

log = logging.getLogger(__name__)

DEFAULT_MAX_INFLIGHT = 200
STATUS_SLOTS = 2  # birth and clean offline travel outside the window
BACKFILL_AFTER_S = 5.0
SESSION_EXPIRY_S = 86400  # the broker keeps the session (and queued commands) for a day
RECONNECT_BASE_S = 1.0
RECONNECT_CAP_S = 30.0  # default of mqtt.reconnect_max_s
PUBLISH_RETRY_S = 1.0
THREAD_CHECK_S = 5.0
RESEND_CHECK_S = 1.0  # how often unconfirmed messages are checked against their deadline
MAX_PENDING_EVENTS = 4 * DEFAULT_MAX_INFLIGHT  # paho thread -> loop

StatusFactory = Callable[[GatewayState], OutboundMessage]


class Uplink:
    def __init__(
        self,
        gateway: str,
        host: str,
        port: int,
        outbox: Outbox,
        make_status: StatusFactory,
        *,
        keepalive_s: int = 30,
        password_file: Path | None = None,
        max_inflight: int = DEFAULT_MAX_INFLIGHT,
        session_expiry_s: int = SESSION_EXPIRY_S,
        reconnect_max_s: float = RECONNECT_CAP_S,
        tls: ClientTls | None = None,
        acknowledgement: str = "auto",
        confirmations: Confirmations | None = None,
        protocol: str = "5",
    ) -> None:
        self.gateway = gateway
        self.host = host
        self.port = port
        self.keepalive_s = keepalive_s
        self.max_inflight = max_inflight
        self.window = max_inflight
        self.session_expiry_s = session_expiry_s
        self.reconnect_max_s = reconnect_max_s
        self.protocol = MQTT_PROTOCOLS[protocol]  # KeyError: not a version the config allows
        self._password = None
        if password_file is not None:
            self._password = password_file.read_text(encoding="utf-8").strip()
        self._tls = tls
        self._tls_logged: str | None = None  # the failure told since the last good connect
        self._outbox = outbox
        self._make_status = make_status
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = asyncio.Event()  # the outbox has something, or the window opened
        self._progress = asyncio.Event()  # an ack arrived or the connection changed
        self._ended = asyncio.Event()  # the current connection is over
        self._ready = False  # connected and this connection's birth acknowledged
        self._stopping = False
        self._attempt = 0  # failures since the last good connection: the backoff exponent
        self._birth: OutboundMessage | None = None
        self._inflight: dict[int, OutboundMessage] = {}  # paho mid -> message
        self._events: deque[tuple[Any, ...]] = deque()  # paho thread -> event loop, in order
        self._drain_scheduled = False
        self._tasks: list[asyncio.Task[None]] = []
        self.counters = dict.fromkeys(
            ("published", "backfilled", "requeued", "rejected", "publish_errors", "connects",
             "disconnects", "connect_failures", "tls_failures"), 0,
        )
        self.downlink = Downlink(gateway, self.counters)
        # What a PUBACK means and what the server's confirmations delete (confirmations.py).
        self.end_to_end = EndToEnd(gateway, outbox, acknowledgement, confirmations)
        self._client = self._new_client()

    @property
    def connected(self) -> bool:
        return self._ready

    @property
    def inflight(self) -> int:
        return len(self._inflight)

    def _new_client(self) -> mqtt.Client:
        # 3.1.1: a persistent session (clean session off) keeps the subscriptions, as expiry does.
        v5 = self.protocol is MQTTProtocolVersion.MQTTv5
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.gateway,
                             protocol=self.protocol, **({} if v5 else {"clean_session": False}))
        client.user_data_set({"ended": False})  # per connection, read on paho's thread
        client.username_pw_set(self.gateway, self._password)
        if self._tls is not None:
            client.tls_set_context(self._tls)
        client.max_inflight_messages_set(self.max_inflight + STATUS_SLOTS)
        # The pump never hands paho more than that; a bound on paho's own queue regardless.
        client.max_queued_messages_set(self.max_inflight + STATUS_SLOTS + 16)
        client.on_pre_connect = self._on_pre_connect
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        self._set_backoff(client)
        return client

    # ---- lifecycle (asyncio side) ----

    async def start(self) -> None:
        """Returns at once; connecting (and retrying) happens in the background."""
        self._loop = asyncio.get_running_loop()
        self._tasks = [
            asyncio.create_task(self._connections(), name="uplink connections"),
            asyncio.create_task(self._pump(), name="uplink pump"),
            asyncio.create_task(self._resend(), name="uplink resend"),
        ]
        log_event(log, "uplink_started", broker=f"{self.host}:{self.port}",
                  mqtt=self.protocol.name,
                  tls=self._tls is not None,
                  keepalive_s=self.keepalive_s, max_inflight=self.max_inflight)

    def notify(self) -> None:
        """New rows were committed to the outbox: publish them if we can."""
        self._wake.set()

    async def stop(self, drain_timeout_s: float = 5.0) -> None:
        """Flush what we can, publish Status(offline) ourselves, disconnect (so no will)."""
        loop = asyncio.get_running_loop()
        self._wake.set()
        await self._wait_until(lambda: not (self._outbox.depth or self._inflight),
                               loop.time() + drain_timeout_s)
        self._stopping = True
        client = self._client
        if self._ready:
            offline = self._make_status(GatewayState.OFFLINE)
            info = client.publish(offline.topic, offline.payload, qos=1, retain=True)
            self._inflight[info.mid] = offline
            await self._wait_until(lambda: info.mid not in self._inflight, loop.time() + 2.0)
            log_event(log, "status_published", state="offline", event_id=offline.event_id,
                      seq=offline.seq, acked=info.mid not in self._inflight)
        unacked = sum(1 for m in self._inflight.values() if m.kind != "status")
        client.disconnect()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await asyncio.to_thread(client.loop_stop)
        log_event(log, "uplink_stopped", unacked=unacked, queued=self._outbox.depth)

    async def _wait_until(self, done: Callable[[], bool], deadline: float) -> None:
        """Wait (while connected) for acks until ``done()`` or the deadline."""
        loop = asyncio.get_running_loop()
        while self._ready and not done() and (remaining := deadline - loop.time()) > 0:
            self._progress.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._progress.wait(), remaining)

    async def _connections(self) -> None:
        """One paho client per connection; between them, what was in flight goes back."""
        while True:
            client = self._client
            self._ended.clear()
            if self.protocol is MQTTProtocolVersion.MQTTv5:
                properties = Properties(PacketTypes.CONNECT)
                properties.SessionExpiryInterval = self.session_expiry_s
                client.connect_async(self.host, self.port, keepalive=self.keepalive_s,
                                     clean_start=False, properties=properties)
            else:
                client.connect_async(self.host, self.port, keepalive=self.keepalive_s)
            client.loop_start()  # paho retries the TCP connect itself, with our backoff
            while not self._ended.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._ended.wait(), THREAD_CHECK_S)
                thread = getattr(client, "_thread", None)  # paho has no public accessor
                if not self._ended.is_set() and thread is not None and not thread.is_alive():
                    log_event(log, "mqtt_thread_ended", logging.ERROR)  # never expected
                    self._link_down()
            await asyncio.to_thread(client.loop_stop)
            self._requeue()
            delay = backoff_delay(max(self._attempt - 1, 0), RECONNECT_BASE_S,
                                  self.reconnect_max_s)
            await asyncio.sleep(delay)
            self._client = self._new_client()

    def _requeue(self) -> None:
        """The connection is gone: nothing it had in flight counts as delivered."""
        requeued = 0
        for message in self._inflight.values():
            if message.kind != "status":
                # It waited for a reconnect at least: it goes out again flagged backfill.
                self._outbox.release(replace(message, offline=True))
                requeued += 1
        self._inflight.clear()
        self.counters["requeued"] += requeued
        if requeued:
            log_event(log, "inflight_requeued", messages=requeued)

    async def _pump(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._ready and not self._stopping:
                room = min(self.window - len(self._inflight), self.end_to_end.room)
                batch = self._outbox.claim(room) if room > 0 else []
                if not batch:
                    break
                now = time.time()
                for index, message in enumerate(batch):
                    if not self._publish(message, now):
                        for unsent in batch[index:]:
                            self._outbox.release(unsent)
                        await asyncio.sleep(PUBLISH_RETRY_S)
                        self._wake.set()
                        break

    async def _resend(self) -> None:
        while True:
            await asyncio.sleep(RESEND_CHECK_S)
            if self._ready and self.end_to_end.resend_due(self.max_inflight):
                self._wake.set()

    def _publish(self, message: OutboundMessage, now: float) -> bool:
        payload = message.payload
        if message.offline or now - message.created > BACKFILL_AFTER_S:
            payload = mark_backfill(payload)
            self.counters["backfilled"] += 1
        try:
            info = self._client.publish(message.topic, payload, qos=message.qos,
                                        retain=message.retain)
        except ValueError as exc:  # a message paho can never send: drop it, loudly
            self.counters["rejected"] += 1
            log_event(log, "publish_impossible", logging.ERROR, event_id=message.event_id,
                      seq=message.seq, kind=message.kind, error=str(exc))
            self._outbox.ack(message)
            return True
        # NO_CONN: the link dropped a moment ago; the message is in flight on this connection
        # and goes back to the outbox with the rest when the connection's end is handled.
        if info.rc in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
            self._inflight[info.mid] = message
            return True
        self.counters["publish_errors"] += 1
        log_event(log, "publish_failed", logging.ERROR, event_id=message.event_id,
                  seq=message.seq, kind=message.kind, rc=mqtt.error_string(info.rc))
        return False

    # ---- events from paho, handled on the event loop in paho's order ----

    def _post(self, client: mqtt.Client, *event: Any) -> None:
        """Called on paho's thread. One scheduled drain serves a whole burst of events."""
        self._events.append((client, *event))
        if not self._drain_scheduled and self._loop is not None:
            self._drain_scheduled = True
            with contextlib.suppress(RuntimeError):  # loop already closed at exit
                self._loop.call_soon_threadsafe(self._drain_events)

    def _drain_events(self) -> None:
        self._drain_scheduled = False  # before draining: a later post schedules a new drain
        while self._events:
            client, name, *args = self._events.popleft()
            if client is not self._client:
                continue  # from a connection already given up
            if name == "ack":
                self._acked(*args)
            elif name == "up":
                self._link_up(*args)
            elif name == "down":
                self._link_down()
            elif name == "msg":
                topic, payload = args
                if topic == self.end_to_end.topic:
                    if self.end_to_end.received(payload):
                        self._wake.set()  # room for more
                        self._progress.set()
                else:
                    self.downlink.received(topic, payload)

    def _link_up(self, birth_mid: int, birth: OutboundMessage, receive_max: int | None) -> None:
        self._birth = birth
        self._inflight[birth_mid] = birth
        self.window = min(self.max_inflight, receive_max or self.max_inflight)
        self._outbox.link_up = True
        self._progress.set()

    def _link_down(self) -> None:
        self._ready = False
        self._birth = None
        self._outbox.link_up = False
        self._ended.set()
        self._progress.set()

    def _acked(self, mid: int, failed: bool, reason: str) -> None:
        message = self._inflight.pop(mid, None)
        if message is None:
            return
        if failed:
            self.counters["rejected"] += 1
            log_event(log, "publish_rejected", logging.ERROR, event_id=message.event_id,
                      seq=message.seq, kind=message.kind, reason=reason)
        else:
            self.counters["published"] += 1
        if message is self._birth:  # the broker has our birth: this connection is usable
            self._birth = None
            self._ready = True
        elif message.kind != "status":
            self.end_to_end.delivered(message)
        self._wake.set()
        self._progress.set()

    # ---- paho callbacks (network thread) ----

    def _set_backoff(self, client: mqtt.Client) -> None:
        # paho waits min_delay before each TCP retry after reconnect_delay_set: make that ours.
        self._retry_in_s = backoff_delay(self._attempt, RECONNECT_BASE_S, self.reconnect_max_s)
        client.reconnect_delay_set(self._retry_in_s, self._retry_in_s)  # type: ignore[arg-type]

    def _on_pre_connect(self, client: mqtt.Client, _userdata: object) -> None:
        will = self._make_status(GatewayState.OFFLINE)
        client.will_set(will.topic, will.payload, qos=1, retain=True)

    def _on_connect(
        self, client: mqtt.Client, _userdata: object, flags: Any, reason: object,
        properties: object,
    ) -> None:
        if getattr(reason, "is_failure", False):
            self.counters["connect_failures"] += 1
            log_event(log, "mqtt_connect_refused", logging.ERROR, reason=str(reason))
            return  # paho closes the connection; on_disconnect follows (and backs off)
        self.counters["connects"] += 1
        self._attempt = 0
        self._tls_logged = None
        receive_max = getattr(properties, "ReceiveMaximum", None)
        topics = list(self.downlink.topics)
        if self.end_to_end.mode != "broker":
            topics.append(self.end_to_end.topic)
        client.subscribe([(topic, 1) for topic in topics])
        birth = self._make_status(GatewayState.ONLINE)
        info = client.publish(birth.topic, birth.payload, qos=1, retain=True)
        self._post(client, "up", info.mid, birth, receive_max)
        log_event(log, "mqtt_connected", broker=f"{self.host}:{self.port}",
                  event_id=birth.event_id, seq=birth.seq,
                  session_present=bool(getattr(flags, "session_present", False)),
                  receive_max=receive_max)

    def _on_connect_fail(self, client: mqtt.Client, _userdata: object) -> None:
        self.counters["connect_failures"] += 1
        self._attempt += 1
        self._set_backoff(client)
        if self._tls_failed():
            return
        if self._attempt <= 2 or self._attempt % 10 == 0:
            log_event(log, "mqtt_unreachable", logging.WARNING, broker=f"{self.host}:{self.port}",
                      attempts=self._attempt, retry_in_s=round(self._retry_in_s, 2))

    def _tls_failed(self) -> bool:
        """The handshake failed: say why once per reconnect series (and again if the reason
        changes); the certificate will not change by itself between attempts."""
        failure = self._tls.take_failure() if self._tls is not None else None
        if failure is None or self._tls is None:
            return False
        self.counters["tls_failures"] += 1
        reason = self._tls.describe(failure)
        if reason != self._tls_logged:
            self._tls_logged = reason
            log_event(log, "mqtt_tls_failed", logging.ERROR, broker=f"{self.host}:{self.port}",
                      ca_file=str(self._tls.ca_file), reason=reason, attempts=self._attempt,
                      retry_in_s=round(self._retry_in_s, 2))
        return True

    def _on_disconnect(
        self, client: mqtt.Client, userdata: dict[str, bool], _flags: object, reason: object,
        _props: object,
    ) -> None:
        if userdata["ended"]:  # paho reports some ends twice (keepalive, then the loop)
            return
        userdata["ended"] = True
        client.disconnect()  # this client is done: a fresh one makes the next connection
        self._post(client, "down")
        if self._stopping:
            return
        self.counters["disconnects"] += 1
        self._attempt += 1
        self._tls_failed()  # the broker may have refused our certificate after the handshake
        log_event(log, "mqtt_disconnected", logging.WARNING, reason=str(reason),
                  attempts=self._attempt)

    def _on_message(self, client: mqtt.Client, _userdata: object,
                    msg: mqtt.MQTTMessage) -> None:
        # Bounded: acks are bounded by the window, commands are not. A dropped command is
        # sent again by the server (a stalled credential transfer is re-published).
        if len(self._events) >= MAX_PENDING_EVENTS:
            self.counters["downlink_dropped"] = self.counters.get("downlink_dropped", 0) + 1
            return
        self._post(client, "msg", msg.topic, bytes(msg.payload))

    def _on_publish(
        self, client: mqtt.Client, _userdata: object, mid: int, reason: object, _props: object
    ) -> None:
        self._post(client, "ack", mid, bool(getattr(reason, "is_failure", False)), str(reason))
