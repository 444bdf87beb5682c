"""MQTT uplink: drains the outbox to the broker, announces the gateway online/offline.

paho-mqtt runs its network loop in its own thread (``loop_start``), so a slow or unreachable
broker never blocks the asyncio loop. The two sides meet only through thread-safe hand-offs:
the asyncio side calls ``publish`` (which only queues a packet and wakes the network thread),
and paho's callbacks come back with ``loop.call_soon_threadsafe``.

Flow control: at most ``WINDOW`` messages are handed to paho without a PUBACK; the rest wait
in the bounded outbox. paho keeps those unacknowledged QoS 1 messages and re-sends them after
a reconnect, so nothing in the window is lost by a broker restart.

Status: every (re)connect publishes a retained ``Status(online)`` (birth) and registers a
retained ``Status(offline)`` as last will. Both are fresh envelopes (new event id, new seq) per
connection, so a server that de-duplicates on event id never mistakes a second outage for a
replay. The will's ``ts`` is the time that connection was opened: the broker publishes it
later, verbatim, when it notices the connection is gone.

Reconnects: capped exponential backoff with jitter, computed here and handed to paho through
``reconnect_delay_set`` before each wait (paho's own backoff has no jitter).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion

from gridsense_protocol import GatewayState

from .backoff import backoff_delay
from .logs import log_event
from .outbox import OutboundMessage, Outbox

log = logging.getLogger(__name__)

WINDOW = 20  # QoS 1 messages in flight (handed to paho, no PUBACK yet)
RECONNECT_BASE_S = 1.0
RECONNECT_CAP_S = 30.0

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
    ) -> None:
        self.gateway = gateway
        self.host = host
        self.port = port
        self.keepalive_s = keepalive_s
        self._outbox = outbox
        self._make_status = make_status
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = asyncio.Event()  # the outbox has something, or the window opened
        self._progress = asyncio.Event()  # an ack arrived or the connection changed
        self._connected = False
        self._stopping = False
        self._attempt = 0
        self._inflight: dict[int, OutboundMessage] = {}
        self._pump_task: asyncio.Task[None] | None = None
        self.counters = dict.fromkeys(
            ("published", "rejected", "publish_errors", "connects", "disconnects",
             "connect_failures"), 0,
        )
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=gateway, protocol=MQTTProtocolVersion.MQTTv5
        )
        password = None
        if password_file is not None:
            password = password_file.read_text(encoding="utf-8").strip()
        client.username_pw_set(gateway, password)
        client.max_inflight_messages_set(WINDOW + 2)  # + birth and offline status
        client.on_pre_connect = self._on_pre_connect
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        self._client = client
        self._retry_in_s = 0.0
        self._set_backoff()

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def inflight(self) -> int:
        return len(self._inflight)

    # ---- lifecycle (asyncio side) ----

    async def start(self) -> None:
        """Returns at once; connecting (and retrying) happens in paho's thread."""
        self._loop = asyncio.get_running_loop()
        self._client.connect_async(self.host, self.port, keepalive=self.keepalive_s)
        self._client.loop_start()
        self._pump_task = asyncio.create_task(self._pump(), name="uplink pump")
        log_event(log, "uplink_started", broker=f"{self.host}:{self.port}")

    def notify(self) -> None:
        """Something was submitted to the outbox: publish it if we can."""
        self._wake.set()

    async def stop(self, drain_timeout_s: float = 5.0) -> None:
        """Flush what we can, publish Status(offline) ourselves, disconnect (so no will)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + drain_timeout_s
        self._wake.set()
        await self._wait_until(lambda: not (len(self._outbox) or self._inflight), deadline)
        self._stopping = True
        if self._connected:
            offline = self._make_status(GatewayState.OFFLINE)
            info = self._client.publish(offline.topic, offline.payload, qos=1, retain=True)
            self._inflight[info.mid] = offline
            await self._wait_until(lambda: info.mid not in self._inflight, loop.time() + 2.0)
            log_event(log, "status_published", state="offline", event_id=offline.event_id,
                      seq=offline.seq, acked=info.mid not in self._inflight)
        if self._pump_task is not None:
            self._pump_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump_task
        self._client.disconnect()
        await asyncio.to_thread(self._client.loop_stop)
        log_event(log, "uplink_stopped", unacked=len(self._inflight), queued=len(self._outbox))

    async def _wait_until(self, done: Callable[[], bool], deadline: float) -> None:
        """Wait (while connected) for acks until ``done()`` or the deadline."""
        loop = asyncio.get_running_loop()
        while self._connected and not done() and (remaining := deadline - loop.time()) > 0:
            self._progress.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._progress.wait(), remaining)

    async def _pump(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._connected and not self._stopping and len(self._inflight) < WINDOW:
                batch = self._outbox.claim(WINDOW - len(self._inflight))
                if not batch:
                    break
                for message in batch:
                    self._publish(message)

    def _publish(self, message: OutboundMessage) -> None:
        info = self._client.publish(
            message.topic, message.payload, qos=message.qos, retain=message.retain
        )
        # NO_CONN: paho keeps the QoS 1 message and sends it after the reconnect.
        if info.rc in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
            self._inflight[info.mid] = message
        else:
            self.counters["publish_errors"] += 1
            log_event(log, "publish_failed", logging.ERROR, event_id=message.event_id,
                      seq=message.seq, kind=message.kind, rc=mqtt.error_string(info.rc))

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
        if message.kind != "status":  # birth is not from the outbox
            self._outbox.ack(message)
        self._wake.set()
        self._progress.set()

    def _set_connected(self, connected: bool) -> None:
        self._connected = connected
        self._progress.set()
        if connected:
            self._wake.set()

    def _to_loop(self, callback: Callable[..., None], *args: object) -> None:
        if self._loop is not None:
            with contextlib.suppress(RuntimeError):  # loop already closed at exit
                self._loop.call_soon_threadsafe(callback, *args)

    # ---- paho callbacks (network thread) ----

    def _set_backoff(self) -> None:
        # paho waits min_delay on the first retry after reconnect_delay_set: make that ours.
        self._retry_in_s = backoff_delay(self._attempt, RECONNECT_BASE_S, RECONNECT_CAP_S)
        self._client.reconnect_delay_set(self._retry_in_s, self._retry_in_s)  # type: ignore[arg-type]

    def _on_pre_connect(self, client: mqtt.Client, _userdata: object) -> None:
        will = self._make_status(GatewayState.OFFLINE)
        client.will_set(will.topic, will.payload, qos=1, retain=True)

    def _on_connect(
        self, client: mqtt.Client, _userdata: object, _flags: object, reason: object, _props: object
    ) -> None:
        if getattr(reason, "is_failure", False):
            self.counters["connect_failures"] += 1
            self._attempt += 1
            self._set_backoff()
            log_event(log, "mqtt_connect_refused", logging.ERROR, reason=str(reason),
                      retry_in_s=round(self._retry_in_s, 2))
            return
        self.counters["connects"] += 1
        self._attempt = 0
        self._set_backoff()
        birth = self._make_status(GatewayState.ONLINE)
        info = client.publish(birth.topic, birth.payload, qos=1, retain=True)
        self._to_loop(self._track, info.mid, birth)
        self._to_loop(self._set_connected, True)
        log_event(log, "mqtt_connected", broker=f"{self.host}:{self.port}",
                  event_id=birth.event_id, seq=birth.seq)

    def _track(self, mid: int, message: OutboundMessage) -> None:
        self._inflight[mid] = message

    def _on_connect_fail(self, _client: mqtt.Client, _userdata: object) -> None:
        self.counters["connect_failures"] += 1
        self._attempt += 1
        self._set_backoff()
        if self._attempt == 1 or self._attempt % 10 == 0:
            log_event(log, "mqtt_unreachable", logging.WARNING, broker=f"{self.host}:{self.port}",
                      attempts=self._attempt, retry_in_s=round(self._retry_in_s, 2))

    def _on_disconnect(
        self, _client: mqtt.Client, _userdata: object, _flags: object, reason: object,
        _props: object,
    ) -> None:
        self._to_loop(self._set_connected, False)
        if self._stopping:
            return
        self.counters["disconnects"] += 1
        self._attempt += 1
        self._set_backoff()
        log_event(log, "mqtt_disconnected", logging.WARNING, reason=str(reason),
                  retry_in_s=round(self._retry_in_s, 2))

    def _on_publish(
        self, _client: mqtt.Client, _userdata: object, mid: int, reason: object, _props: object
    ) -> None:
        self._to_loop(self._acked, mid, bool(getattr(reason, "is_failure", False)), str(reason))
