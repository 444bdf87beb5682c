"""Readings into InfluxDB line protocol, written over the v1 ``/write`` API — or spooled to disk.

A batch is durable, and its messages may be acknowledged, once InfluxDB took it or it is
synced to the spool.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from gridsense_protocol import Reading

from ..acks import INFLUX_LINES, InboundMessage
from ..backoff import Backoff
from ..config import InfluxConfig
from ..counters import Counters
from ..logs import kv
from ..registry.directory import PointDirectory
from ..tasks import cancel_and_wait
from .backends import store_http
from .batches import Batch
from .influx_http import Outcome
from .line_protocol import UNASSIGNED_GRID, LineFormatter
from .spool import DiskSpool, SpooledBatch, SpoolKey

log = logging.getLogger(__name__)

DEFAULT_SEAL_MESSAGES = 250


@dataclass(slots=True)
class _Job:
    """One write request: a record from the spool, or batches from memory."""

    spooled: SpooledBatch | None = None
    batches: list[Batch] = field(default_factory=list)

    def body(self) -> bytes:
        if self.spooled is not None:
            return self.spooled.body
        return b"".join(batch.body() for batch in self.batches)

    @property
    def lines(self) -> int:
        if self.spooled is not None:
            return self.spooled.lines
        return sum(len(batch) for batch in self.batches)


class InfluxWriter:
    def __init__(
        self,
        config: InfluxConfig,
        directory: PointDirectory,
        counters: Counters,
        *,
        spool: DiskSpool | None = None,
        seal_messages: int = DEFAULT_SEAL_MESSAGES,
        backoff: Backoff | None = None,
        request_timeout_s: float = 30.0,
    ) -> None:
        self.config = config
        self.counters = counters
        self.formatter = LineFormatter(directory.grid_of)
        self.http = store_http(config, counters, request_timeout_s)
        self.spool = spool
        self._seal_messages = max(1, seal_messages)
        self._backoff = backoff or Backoff(initial_s=0.2, cap_s=10.0)
        self._pending: list[str] = []
        self._pending_messages: list[InboundMessage] = []
        self._pending_parts: list[tuple[InboundMessage | None, int]] = []
        self._fresh: deque[Batch] = deque()  # sealed, in memory, oldest first
        self._fresh_lines = 0
        self._warned_unknown: set[str] = set()
        # Held while the head of the queue changes hands (memory → spool, written → gone), so
        # the sender and the spooler always agree on what is oldest.
        self._turn = asyncio.Lock()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._memory_empty = asyncio.Event()  # nothing sealed waits in memory
        self._memory_empty.set()
        self._tasks: list[asyncio.Task[None]] = []

    # -- hot path (called from the asyncio loop) -------------------------------------------

    def add_readings(self, gateway: str, readings: Iterable[Reading],
                     message: InboundMessage | None = None) -> None:
        self.add_lines(self.format_readings(gateway, readings), message)

    def format_readings(self, gateway: str, readings: Iterable[Reading]) -> list[str]:
        """Their lines; ``formatter.span`` then holds their earliest and latest time (ns)."""
        lines, unknown = self.formatter.format(gateway, readings)
        if unknown:
            self._count_unknown(gateway, unknown)
        return lines

    def add_lines(self, lines: list[str], message: InboundMessage | None = None) -> None:
        """Queue lines; ``message.done(INFLUX_LINES)`` is called once they are durable."""
        self._pending.extend(lines)
        self._pending_parts.append((message, len(lines)))
        if message is not None:
            self._pending_messages.append(message)
        if (len(self._pending) >= self.config.batch_size
                or len(self._pending_messages) >= self._seal_messages):
            self._seal()

    def _count_unknown(self, gateway: str, points: list[str]) -> None:
        self.counters.inc("influx.unknown_point_readings", len(points))
        for point in set(points) - self._warned_unknown:
            if len(self._warned_unknown) < 10_000:  # bounded: warn once per point
                self._warned_unknown.add(point)
                log.warning(kv("reading_from_unknown_point", gateway=gateway, point=point,
                               grid=UNASSIGNED_GRID))

    def _seal(self) -> None:
        if not self._pending and not self._pending_messages:
            return
        batch = Batch(self._pending, self._pending_messages, self._pending_parts)
        self._pending, self._pending_messages, self._pending_parts = [], [], []
        if not batch.lines:
            batch.make_durable()  # nothing to store
            return
        self._fresh.append(batch)
        self._fresh_lines += len(batch)
        self._idle.clear()
        self._memory_empty.clear()
        self._wake.set()

    @property
    def buffered_lines(self) -> int:
        """Lines in memory, sealed or not (the spool has its own gauge)."""
        return self._fresh_lines + len(self._pending)

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        await self.http.open()
        self._tasks = [
            asyncio.create_task(self._send_loop(), name="influx-sender"),
            asyncio.create_task(self._flush_timer(), name="influx-flush-timer"),
        ]
        if self.spool is not None:
            self._tasks.append(asyncio.create_task(self._spool_timer(), name="influx-spooler"))
            if self.spool.records:  # left from before a restart: send it first
                self._idle.clear()
                self._wake.set()

    async def flush(self) -> None:
        """Seal what is pending and wait until everything (spool included) is written."""
        self._seal()
        await self._idle.wait()

    async def stop(self, flush_timeout: float = 10.0) -> None:
        """Make everything received durable — written, or else spooled — then stop. Without a
        spool, what InfluxDB did not take stays unacknowledged: the broker redelivers it."""
        if self._tasks:
            self._seal()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(flush_timeout):
                    await self._memory_empty.wait()
            if self._fresh and self.spool is not None:
                await self._spool_old(everything=True)
        await cancel_and_wait(self._tasks)
        self._tasks = []
        if self._fresh_lines:
            self.counters.inc("influx.unwritten_at_shutdown_lines", self._fresh_lines)
            log.warning(kv("influx_unwritten_at_shutdown", lines=self._fresh_lines,
                           acknowledged=False))
        await self.http.close()

    async def _flush_timer(self) -> None:
        while True:
            await asyncio.sleep(self.config.flush_interval_s)
            self._seal()

    # -- sending -----------------------------------------------------------------------------

    async def _send_loop(self) -> None:
        # The database is created at start, not on the first write: queries work at once.
        for _attempt in itertools.count():
            if await self.http.ensure_database():
                break
            await asyncio.sleep(self._backoff.next_delay())
        self._backoff.reset()
        while True:
            job = await self._next_job()
            if job is None:
                self._idle.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            outcome = await self.http.write(job.body(), job.lines, backlog=self._backlog())
            if outcome.done:
                self._backoff.reset()
                if outcome is Outcome.REJECTED:
                    await self._set_aside_rejected(job)
                await self._complete(job)
            else:
                await asyncio.sleep(self._backoff.next_delay())

    async def _next_job(self) -> _Job | None:
        async with self._turn:
            spool = self.spool
            if spool is not None and spool.records:
                spooled = await asyncio.to_thread(spool.peek)
                if spooled is not None:
                    return _Job(spooled=spooled)
            if not self._fresh:
                return None
            batches = [self._fresh[0]]
            lines = len(batches[0])
            for batch in list(self._fresh)[1:]:
                if lines + len(batch) > self.config.batch_size:
                    break
                batches.append(batch)
                lines += len(batch)
            return _Job(batches=batches)

    async def _complete(self, job: _Job) -> None:
        async with self._turn:
            if job.spooled is not None:
                if await asyncio.to_thread(self._pop_spooled, job.spooled.key):
                    self.counters.inc("influx.spool_sent_lines", job.spooled.lines)
                return
            for batch in job.batches:
                if self._fresh and self._fresh[0] is batch:
                    self._fresh.popleft()
                    self._fresh_lines -= len(batch)
                    batch.make_durable()
                elif batch.spool_key is not None:
                    # Spooled (and acknowledged) while the write was under way: it is the
                    # spool's oldest record now, and must not be sent again.
                    await asyncio.to_thread(self._pop_spooled, batch.spool_key)
            if not self._fresh:
                self._memory_empty.set()

    async def _set_aside_rejected(self, job: _Job) -> None:
        """InfluxDB refused (part of) a batch for good — points beyond its retention policy, a
        line it cannot parse: write each message's lines alone, and dead-letter the messages
        it refuses again, so the rest are acked as usual. Rare, so a second request is fine."""
        async with self._turn:  # the spooler must not take these batches meanwhile
            for batch in job.batches:
                if batch.durable or not batch.messages:
                    continue
                refused: list[InboundMessage] = []
                for message, body, lines in batch.split():
                    outcome = await self.http.write(body, lines)
                    if outcome is Outcome.RETRY:
                        return  # InfluxDB went away: the rest counts as rejected, as before
                    if outcome is Outcome.REJECTED:
                        refused.append(message)
                if not refused:
                    continue
                gone = {id(m) for m in refused}
                batch.messages = [m for m in batch.messages if id(m) not in gone]
                for message in refused:
                    message.failed(INFLUX_LINES, f"influxdb refused: {self.http.last_rejection}")

    def _pop_spooled(self, key: SpoolKey) -> bool:
        assert self.spool is not None
        return self.spool.pop(key)

    def _backlog(self) -> int:
        return self._fresh_lines + (self.spool.lines if self.spool is not None else 0)

    # -- spooling ----------------------------------------------------------------------------

    async def _spool_timer(self) -> None:
        after_s = self.config.spool_after_s
        while True:
            await asyncio.sleep(min(0.2, after_s / 2))
            if self._fresh and time.monotonic() - self._fresh[0].sealed_at >= after_s:
                await self._spool_old()

    async def _spool_old(self, everything: bool = False) -> None:
        """Move the batches InfluxDB did not take in time from memory to the spool, oldest
        first (the one being written too: the spool must stay older than memory)."""
        spool = self.spool
        assert spool is not None
        async with self._turn:
            deadline = time.monotonic() - self.config.spool_after_s
            moving: list[Batch] = []
            for batch in self._fresh:
                if not everything and batch.sealed_at > deadline:
                    break
                moving.append(batch)
            if not moving:
                return
            results = await asyncio.to_thread(_push_and_sync, spool, moving)
            dropped = 0
            for batch, (key, lost) in zip(moving, results, strict=True):
                batch.spool_key = key
                dropped += lost
                self._fresh.popleft()
                self._fresh_lines -= len(batch)
                batch.make_durable()
            if not self._fresh:
                self._memory_empty.set()
            lines = sum(len(b) for b in moving)
            self.counters.inc("influx.spooled_lines", lines)
            log.info(kv("influx_spooled", batches=len(moving), lines=lines,
                        spool_lines=spool.lines, spool_bytes=spool.bytes))
            if dropped:
                self.counters.inc("influx.spool_dropped_lines", dropped)
                log.error(kv("influx_spool_full_oldest_dropped", dropped_lines=dropped,
                             spool_max_bytes=spool.max_bytes, spool_lines=spool.lines))
            self._wake.set()


def _push_and_sync(spool: DiskSpool, batches: list[Batch]) -> list[tuple[SpoolKey | None, int]]:
    results = [spool.push(batch.body(), len(batch)) for batch in batches]
    spool.sync()
    return results
