"""Ingest from a NATS cluster: gateways speak MQTT 3.1.1 to any node; their messages land in a
JetStream stream (replicated across the nodes) and every server process reads it through the
same durable pull consumer, so the processes share the load and a message taken by a process
that dies is delivered again to another after ``nats.ack_wait_s``.

The same surface as the MQTT bridge (``start``, ``ack``, ``publish``, ``pause_reading``,
``stop``, ``generation``, ``connected``, ``subscribed``), so the router, the ledgers and the
settled acknowledgements do not know which source they read. nats-py runs in an asyncio loop
of its own, in a thread of its own, as paho does; a JetStream message is acknowledged only when
the ledger says its effects are durable. ``Settled`` goes back as a plain NATS publication on
the gateway's ``ack`` subject, which its MQTT subscription receives (at QoS 0: a lost one costs
the gateway one re-send).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
from collections import deque
from typing import Any

import nats
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.js.api import AckPolicy, ConsumerConfig, DiscardPolicy, RetentionPolicy, StreamConfig
from nats.js.errors import Error as JetStreamError
from nats.js.errors import NotFoundError

from ..acks import AckToken, InboundMessage
from ..backoff import Backoff
from ..config import NatsConfig
from ..counters import Counters
from ..logs import kv
from .handoff import Handoff
from .inbound import InboundDecoder
from .nats_subjects import StreamLayout, SubjectError, subject_to_topic, topic_to_subject

log = logging.getLogger(__name__)

FETCH_MAX = 256  # messages asked for per pull
FETCH_WAIT_S = 1.0  # a pull waits this long for the first message
MAX_OUTGOING = 1000  # publications waiting for the connection (a bound, not a working size)
_HANDOFF_RETRY_S = 0.05
_PAUSED_POLL_S = 0.1  # reading paused or the window full: look again this often
# The token's first field: JetStream acks name the delivery, not the connection, so an ack
# stays valid across reconnects and the generation never changes.
GENERATION = 1


def reconnect_choice(servers: list[Any], _info: dict[str, Any]) -> tuple[Any, float]:
    """nats-py's reconnect hook: the node tried least (ties at random), after a capped,
    jittered delay that grows with that node's failed attempts."""
    fewest = min(server.reconnects for server in servers)
    chosen = random.choice([s for s in servers if s.reconnects == fewest])
    base = min(10.0, 0.25 * 2 ** min(fewest, 10))
    return chosen, random.uniform(base / 2, base)


def _netloc(client: NatsClient) -> str:
    url = client.connected_url
    return str(url.netloc) if url is not None else ""


class NatsBridge:
    """One durable pull consumer of one stream; acks after durability; publishes."""

    def __init__(self, config: NatsConfig, counters: Counters, *, client_id: str,
                 layout: StreamLayout, window: int) -> None:
        self.config = config
        self.counters = counters
        self.client_id = client_id
        self.layout = layout
        self.window = window  # at most this many taken and not acknowledged, in this process
        self.generation = GENERATION
        self.connected = threading.Event()
        self.subscribed = threading.Event()  # the stream and its consumer exist: reading
        self.handoff: Handoff[InboundMessage] | None = None
        self._decoder = InboundDecoder(counters, client_id)
        self._stop = threading.Event()
        self._reading = threading.Event()
        self._reading.set()
        self._acks: deque[AckToken] = deque()  # from the server's loop
        self._outgoing: deque[tuple[str, bytes]] = deque()
        self._taken: dict[int, Msg] = {}  # key -> message waiting for its ack (NATS loop only)
        self._keys = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._retain_told = False
        self.server = ""  # host:port of the node connected to (logs, tests)

    # -- called from the server's loop (thread-safe) ----------------------------------------

    def ack(self, tokens: list[AckToken]) -> None:
        self._acks.extend(tokens)
        self._poke()

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> bool:
        """Queue a publication; False when too many are waiting. NATS has no retained
        publications: a retained one goes out plain (counted, said once)."""
        if len(self._outgoing) >= MAX_OUTGOING:
            self.counters.inc("nats.publish_dropped")
            return False
        if retain:
            self.counters.inc("nats.retain_unsupported")
            if not self._retain_told:
                self._retain_told = True
                log.warning(kv("nats_retain_unsupported", topic=topic,
                               detail="published without retain: a gateway offline now does "
                                      "not receive it when it connects"))
        self._outgoing.append((topic, payload))
        self._poke()
        return True

    def pause_reading(self) -> None:
        self._reading.clear()

    def acks_pending(self) -> int:
        return len(self._acks)

    def _poke(self) -> None:
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            with contextlib.suppress(RuntimeError):  # its loop already closed
                loop.call_soon_threadsafe(wake.set)

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self, handoff: Handoff[InboundMessage]) -> None:
        self.handoff = handoff
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()),
                                        name=f"nats-{self.client_id}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Send the acks and publications queued so far, then close (the consumer stays on
        the cluster: what this process had not acknowledged goes to another)."""
        self._stop.set()
        self._poke()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        backoff = Backoff(initial_s=0.5, cap_s=self.config.reconnect_max_s)
        while not self._stop.is_set():
            client: NatsClient | None = None
            try:
                client = await self._connect()
                await self._run(client, backoff)
            except Exception as exc:
                # The cluster away (NatsError, OSError, a JetStream API timeout), or a bug of
                # ours: either way this thread must live on, or ingest stops for good.
                delay = backoff.next_delay()
                self.counters.inc("nats.connect_failures")
                expected = isinstance(exc, TimeoutError | NatsError | JetStreamError | OSError)
                log.log(logging.WARNING if expected else logging.ERROR,
                        kv("nats_unavailable", client_id=self.client_id,
                           stream=self.layout.stream, error=repr(exc)[:300],
                           retry_in_s=round(delay, 2)),
                        exc_info=not expected)
                await self._sleep(delay)
            finally:
                self.connected.clear()
                self.subscribed.clear()
                if client is not None:
                    with contextlib.suppress(Exception):
                        await self._flush_out(client)
                        await client.close()

    async def _sleep(self, seconds: float) -> None:
        assert self._wake is not None
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    async def _connect(self) -> NatsClient:
        config = self.config
        password = None
        if config.password_file is not None:
            password = config.password_file.read_text(encoding="utf-8").strip()

        async def disconnected() -> None:
            self.connected.clear()
            if self._stop.is_set():
                return  # our own close at shutdown
            self.counters.inc("nats.disconnects")
            log.warning(kv("nats_disconnected", client_id=self.client_id))

        async def reconnected() -> None:
            self.connected.set()
            self.counters.inc("nats.reconnects")
            self.server = _netloc(client)
            log.info(kv("nats_reconnected", client_id=self.client_id, server=self.server))

        async def error(exc: Exception) -> None:
            self.counters.inc("nats.errors")
            log.debug(kv("nats_error", client_id=self.client_id, error=repr(exc)[:300]))

        client = await nats.connect(
            servers=list(config.urls), name=self.client_id, user=config.username,
            password=password, connect_timeout=2, max_reconnect_attempts=-1,
            reconnect_to_server_handler=reconnect_choice, disconnected_cb=disconnected,
            reconnected_cb=reconnected, error_cb=error)
        self.connected.set()
        return client

    async def _ensure_stream(self, client: NatsClient) -> Any:
        """The stream and its durable consumer, made by whichever process comes first (the
        same configuration from every process, so making them again changes nothing)."""
        js = client.jetstream()
        layout, config = self.layout, self.config
        try:
            await js.stream_info(layout.stream)
        except NotFoundError:
            with contextlib.suppress(JetStreamError):  # another process made it meanwhile
                await js.add_stream(StreamConfig(
                    name=layout.stream, subjects=list(layout.subjects),
                    retention=RetentionPolicy.WORK_QUEUE, num_replicas=config.replicas,
                    max_age=float(config.max_age_s), max_bytes=config.max_mb * 2**20,
                    discard=DiscardPolicy.OLD))
            await js.stream_info(layout.stream)  # raises if it still is not there
        consumer = ConsumerConfig(
            durable_name=layout.durable, ack_policy=AckPolicy.EXPLICIT,
            ack_wait=config.ack_wait_s, max_ack_pending=config.max_ack_pending,
            max_deliver=-1)
        return await js.pull_subscribe("", durable=layout.durable, stream=layout.stream,
                                       config=consumer)

    async def _run(self, client: NatsClient, backoff: Backoff) -> None:
        subscription = await self._ensure_stream(client)
        self.subscribed.set()
        self.counters.inc("nats.connects")
        self.server = _netloc(client)
        log.info(kv("nats_connected", client_id=self.client_id, stream=self.layout.stream,
                    consumer=self.layout.durable, server=self.server))
        backoff.reset()
        sender = asyncio.create_task(self._sender(client))
        try:
            while not self._stop.is_set():
                if not self._reading.is_set() or len(self._taken) >= self.window:
                    await asyncio.sleep(_PAUSED_POLL_S)  # (the wake event is the sender's)
                    continue
                try:
                    batch = await subscription.fetch(
                        min(FETCH_MAX, self.window - len(self._taken)), timeout=FETCH_WAIT_S)
                except TimeoutError:  # nothing to take (nats-py raises asyncio's or its own)
                    continue
                except (NatsError, JetStreamError) as exc:
                    # The node we pull through is gone: the client reconnects to another.
                    self.counters.inc("nats.fetch_failures")
                    delay = backoff.next_delay()
                    log.warning(kv("nats_fetch_failed", client_id=self.client_id,
                                   error=repr(exc)[:300], retry_in_s=round(delay, 2)))
                    await asyncio.sleep(delay)
                    continue
                backoff.reset()
                for msg in batch:
                    await self._take(msg)
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender

    async def _take(self, msg: Msg) -> None:
        self._keys += 1
        key = self._keys
        if msg.metadata.num_delivered > 1:
            self.counters.inc("nats.redeliveries")
        try:
            topic = subject_to_topic(msg.subject)
        except SubjectError:
            topic = msg.subject  # decoding refuses it, naming the subject
        self._taken[key] = msg
        inbound = self._decoder.message(topic, msg.data, (GENERATION, key, 1),
                                        msg.metadata.sequence.stream)
        assert self.handoff is not None
        while not self.handoff.put(inbound, 0):
            self.counters.inc("ingest.backpressure_waits")
            if self._stop.is_set():
                # Not acknowledged, so not lost: JetStream delivers it again after ack_wait.
                self.counters.inc("ingest.not_taken_at_shutdown")
                self._taken.pop(key, None)
                return
            await asyncio.sleep(_HANDOFF_RETRY_S)

    async def _sender(self, client: NatsClient) -> None:
        assert self._wake is not None
        while True:
            await self._flush_out(client)
            if self._stop.is_set():
                return
            await self._sleep(0.5)

    async def _flush_out(self, client: NatsClient) -> None:
        """Acks first (they free the consumer's window), then publications."""
        acks, taken = self._acks, self._taken
        sent = 0
        while acks:
            _generation, key, _qos = acks.popleft()
            msg = taken.pop(key, None)
            if msg is None:
                continue
            try:
                await msg.ack()
            except NatsError:
                # Not acknowledged: delivered again after ack_wait, and settled again (dedup).
                self.counters.inc("nats.ack_failures")
                continue
            sent += 1
        if sent:
            self.counters.inc("nats.acks", sent)
        outgoing = self._outgoing
        while outgoing:
            topic, payload = outgoing[0]
            try:
                await client.publish(topic_to_subject(topic), payload)
            except SubjectError:
                self.counters.inc("nats.publish_dropped")
            except NatsError:
                return  # kept for the next round
            outgoing.popleft()
            self.counters.inc("nats.published")
        with contextlib.suppress(NatsError, asyncio.TimeoutError):
            await client.flush(timeout=2)
