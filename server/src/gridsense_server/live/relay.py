"""Carry live-stream events between server processes through PostgreSQL LISTEN/NOTIFY.

Every process delivers its own events to its own streams at once (the hub does that) and hands
a copy to the relay, which NOTIFYs it on a channel named after the database schema; every other
process LISTENs there and fans the copy out to its own streams. A NOTIFY payload is at most
~8,000 bytes: a larger event goes as numbered parts in one transaction (PostgreSQL delivers a
transaction's notifications together and in order), up to ``MAX_EVENT_BYTES``; beyond that it
is dropped and counted. The outgoing queue is bounded (the oldest goes first, counted); the
listening connection reconnects with backoff and jitter. While it is down, other processes'
events are missed (counted as a gap): once listening again, ``on_gap`` tells this process's
streams to re-read what they show (the hub sends them ``connected``, as after a reconnect).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import logging
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any

import psycopg
from sqlalchemy.engine import make_url

from ..backoff import Backoff
from ..counters import Counters
from ..logs import kv
from ..tasks import cancel_and_wait

log = logging.getLogger(__name__)

PART_BYTES = 7000  # under PostgreSQL's 8,000-byte payload limit, with room for the envelope
MAX_EVENT_BYTES = 256 * 1024
QUEUE_MAX = 10_000  # events waiting to be sent
SEND_BATCH = 200  # events per NOTIFY transaction
REASSEMBLY_MAX = 64  # part-sent events being put together at once
Deliver = Callable[[dict[str, Any]], None]


def conninfo(url: str) -> str:
    """A psycopg connection string from the server's SQLAlchemy URL (its options kept)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def channel_for(schema: str) -> str:
    """One channel per schema: deployments (or tests) sharing a database never cross."""
    return "gridsense_live_" + hashlib.sha256(schema.encode()).hexdigest()[:16]


def split(origin: str, number: int, message: dict[str, Any]) -> list[str]:
    """The NOTIFY payloads for one message: one when it fits, else numbered parts."""
    body = json.dumps(message, ensure_ascii=False, separators=(",", ":"))
    if len(body.encode()) <= PART_BYTES:
        return [json.dumps({"o": origin, "m": message}, ensure_ascii=False,
                           separators=(",", ":"))]
    if len(body.encode()) > MAX_EVENT_BYTES:
        raise ValueError(f"live event of {len(body.encode())} bytes is over the relay's "
                         f"{MAX_EVENT_BYTES}")
    # Split by characters: a part's bytes stay under the limit even if every one were 4 bytes.
    step = PART_BYTES // 4
    chunks = [body[i:i + step] for i in range(0, len(body), step)]
    return [json.dumps({"o": origin, "n": number, "i": i, "of": len(chunks), "d": chunk},
                       ensure_ascii=False, separators=(",", ":"))
            for i, chunk in enumerate(chunks)]


class Reassembly:
    """Puts part-sent events together; bounded (the oldest unfinished one is dropped)."""

    def __init__(self, counters: Counters) -> None:
        self.counters = counters
        self._parts: OrderedDict[tuple[str, int], list[str | None]] = OrderedDict()

    def take(self, payload: str) -> tuple[str, dict[str, Any] | None]:
        """(origin, the whole message or None while parts are missing) for one payload."""
        envelope = json.loads(payload)
        origin = str(envelope["o"])
        if "m" in envelope:
            return origin, envelope["m"]
        key, index, count = (origin, int(envelope["n"])), int(envelope["i"]), int(envelope["of"])
        parts = self._parts.get(key)
        if parts is None:
            if len(self._parts) >= REASSEMBLY_MAX:
                self._parts.popitem(last=False)
                self.counters.inc("live.relay_incomplete")
            parts = self._parts[key] = [None] * count
        parts[index] = envelope["d"]
        if any(part is None for part in parts):
            return origin, None
        del self._parts[key]
        return origin, json.loads("".join(p for p in parts if p is not None))


class PgRelay:
    def __init__(self, url: str, counters: Counters, deliver: Deliver, origin: str,
                 on_gap: Callable[[], None] | None = None) -> None:
        self.conninfo = conninfo(url)
        self.counters = counters
        self.deliver = deliver  # fans a message from another process out here (on the loop)
        self.origin = origin  # this process: its own events come back and are skipped
        self.on_gap = on_gap
        self.channel: str | None = None
        self.listening = asyncio.Event()
        self._numbers = itertools.count(1)
        self._queue: deque[dict[str, Any]] = deque()
        self._ready = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: tuple[asyncio.Task[None], ...] = ()

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._tasks = (asyncio.create_task(self._listen(), name="live-relay-listen"),
                       asyncio.create_task(self._send(), name="live-relay-send"))

    async def stop(self) -> None:
        await cancel_and_wait(self._tasks)

    def send(self, message: dict[str, Any]) -> None:
        """Queue a message for the other processes (from any thread; never waits)."""
        if len(self._queue) >= QUEUE_MAX:
            with contextlib.suppress(IndexError):
                self._queue.popleft()
            self.counters.inc("live.relay_dropped")
        self._queue.append(message)
        loop = self._loop
        if loop is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop is closed: the server is stopping
            loop.call_soon_threadsafe(self._ready.set)

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        connection = await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True,
                                                           connect_timeout=10)
        if self.channel is None:
            cursor = await connection.execute("SELECT current_schema()")
            row = await cursor.fetchone()
            self.channel = channel_for(str(row[0] if row else "public"))
        return connection

    async def _listen(self) -> None:
        backoff = Backoff(initial_s=0.5, cap_s=15.0)
        reassembly = Reassembly(self.counters)
        while True:
            try:
                async with await self._connect() as connection:
                    await connection.execute(f'LISTEN "{self.channel}"')
                    if backoff.attempts:
                        self.counters.inc("live.relay_gaps")
                        log.info(kv("live_relay_listening_again", channel=self.channel))
                        if self.on_gap is not None:
                            self.on_gap()
                    backoff.reset()
                    self.listening.set()
                    async for note in connection.notifies():
                        self._received(reassembly, note.payload)
            except (psycopg.Error, OSError) as exc:
                self.listening.clear()
                self.counters.inc("live.relay_reconnects")
                delay = backoff.next_delay()
                log.warning(kv("live_relay_listen_failed", error=str(exc)[:200],
                               retry_s=round(delay, 1)))
                await asyncio.sleep(delay)

    def _received(self, reassembly: Reassembly, payload: str) -> None:
        try:
            origin, message = reassembly.take(payload)
        except (ValueError, KeyError, TypeError) as exc:
            self.counters.inc("live.relay_bad_payloads")
            log.warning(kv("live_relay_bad_payload", error=str(exc)[:200], size=len(payload)))
            return
        if message is None or origin == self.origin:
            return
        self.counters.inc("live.relay_received")
        try:
            self.deliver(message)
        except Exception:
            self.counters.inc("live.relay_errors")
            log.exception(kv("live_relay_deliver_failed"))

    async def _send(self) -> None:
        backoff = Backoff(initial_s=0.5, cap_s=15.0)
        while True:
            try:
                async with await self._connect() as connection:
                    backoff.reset()
                    while True:
                        await self._send_batch(connection)
            except (psycopg.Error, OSError) as exc:
                delay = backoff.next_delay()
                log.warning(kv("live_relay_send_failed", error=str(exc)[:200],
                               waiting=len(self._queue), retry_s=round(delay, 1)))
                await asyncio.sleep(delay)

    async def _send_batch(self, connection: psycopg.AsyncConnection[Any]) -> None:
        while not self._queue:
            self._ready.clear()
            await self._ready.wait()
        batch = [self._queue.popleft() for _ in range(min(SEND_BATCH, len(self._queue)))]
        payloads: list[str] = []
        for message in batch:
            try:
                payloads += split(self.origin, next(self._numbers), message)
            except ValueError as exc:
                self.counters.inc("live.relay_too_large")
                log.warning(kv("live_relay_too_large", error=str(exc)))
        try:
            async with connection.transaction(), connection.cursor() as cursor:
                await cursor.executemany("SELECT pg_notify(%s, %s)",
                                         [(self.channel, p) for p in payloads])
        except BaseException:
            self._queue.extendleft(reversed(batch))  # sent again after the reconnect
            raise
        self.counters.inc("live.relay_sent", len(batch))
