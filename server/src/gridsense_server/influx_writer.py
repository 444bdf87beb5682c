"""Batch readings into InfluxDB line protocol and write them over the v1 ``/write`` API.

Batches are sealed when ``batch_size`` lines are pending or every ``flush_interval_s``, and
sent strictly in order by one sender task. InfluxDB down (connection error, 5xx): the head
batch is retried with capped, jittered backoff while new batches wait behind it in a bounded
buffer (full: the oldest batches are dropped and counted). InfluxDB says a batch is wrong
(4xx): its answer is logged, the batch counted and dropped, and the next batch goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import re
from collections.abc import Iterable

import httpx

from gridsense_protocol import Reading

from .backoff import Backoff
from .config import InfluxConfig
from .counters import Counters
from .directory import PointDirectory
from .line_protocol import LineFormatter
from .logs import kv
from .write_buffer import Batch, BatchBuffer, MemoryBatchBuffer

log = logging.getLogger(__name__)

DEFAULT_MAX_BUFFERED_LINES = 1_000_000  # ~100 MB of lines at worst
_DROPPED_RE = re.compile(r"dropped=(\d+)")
_RETRYABLE_4XX = frozenset({404, 408, 429})  # 404: database missing (dropped?): re-create


class InfluxWriter:
    def __init__(
        self,
        config: InfluxConfig,
        directory: PointDirectory,
        counters: Counters,
        *,
        buffer: BatchBuffer | None = None,
        max_buffered_lines: int = DEFAULT_MAX_BUFFERED_LINES,
        backoff: Backoff | None = None,
        request_timeout_s: float = 30.0,
    ) -> None:
        self.config = config
        self.counters = counters
        self.formatter = LineFormatter(directory.grid_of)
        self.buffer: BatchBuffer = buffer or MemoryBatchBuffer(max_buffered_lines)
        self._backoff = backoff or Backoff(initial_s=0.2, cap_s=10.0)
        self._request_timeout_s = request_timeout_s
        self._pending: list[str] = []
        self._warned_unknown: set[str] = set()
        self._database_ready = False
        self._has_batches = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._client: httpx.AsyncClient | None = None
        self._tasks: list[asyncio.Task[None]] = []

    # -- hot path (called from the asyncio loop) -------------------------------------------

    def add_readings(self, gateway: str, readings: Iterable[Reading]) -> None:
        lines, unknown = self.formatter.format(gateway, readings)
        if unknown:
            self._count_unknown(gateway, unknown)
        self.add_lines(lines)

    def add_lines(self, lines: list[str]) -> None:
        pending = self._pending
        pending.extend(lines)
        if len(pending) >= self.config.batch_size:
            self._seal(full_only=True)

    def _count_unknown(self, gateway: str, points: list[str]) -> None:
        self.counters.inc("influx.unknown_point_readings", len(points))
        for point in set(points) - self._warned_unknown:
            if len(self._warned_unknown) < 10_000:  # bounded: warn once per point
                self._warned_unknown.add(point)
                log.warning(kv("reading_from_unknown_point", gateway=gateway, point=point,
                               grid="unknown"))

    def _seal(self, full_only: bool = False) -> None:
        """Move pending lines into batches of batch_size; a remainder waits unless flushing."""
        size = self.config.batch_size
        pending = self._pending
        end = len(pending) - len(pending) % size if full_only else len(pending)
        self._pending = pending[end:]
        for start in range(0, end, size):
            dropped = self.buffer.push(Batch(pending[start : start + size]))
            if dropped:
                self.counters.inc("influx.dropped_lines", dropped)
                log.error(kv("influx_buffer_full", dropped_lines=dropped,
                             buffered_lines=self.buffer.lines))
        if end:
            self._idle.clear()
            self._has_batches.set()

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        # trust_env=False: a proxy variable meant for the internet must not capture InfluxDB.
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(self._request_timeout_s, connect=5.0), trust_env=False
        )
        self._tasks = [
            asyncio.create_task(self._send_loop(), name="influx-sender"),
            asyncio.create_task(self._flush_timer(), name="influx-flush-timer"),
        ]

    async def flush(self) -> None:
        """Seal what is pending and wait until everything buffered has been written."""
        if self._pending:
            self._seal()
        await self._idle.wait()

    async def stop(self, flush_timeout: float = 10.0) -> None:
        flushed = False
        if self._tasks:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(flush_timeout):
                    await self.flush()
                    flushed = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if not flushed and self.buffer.lines:
            self.counters.inc("influx.lost_at_shutdown_lines", self.buffer.lines)
            log.error(kv("influx_unflushed_at_shutdown", lines=self.buffer.lines))
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _flush_timer(self) -> None:
        while True:
            await asyncio.sleep(self.config.flush_interval_s)
            if self._pending:
                self._seal()

    # -- sending -----------------------------------------------------------------------------

    async def _send_loop(self) -> None:
        # The database is created at start, not on the first write: queries work at once.
        await self._create_database()
        while True:
            batch = self.buffer.peek()
            if batch is None:
                self._idle.set()
                self._has_batches.clear()
                await self._has_batches.wait()
                continue
            if await self._write(batch):
                self._backoff.reset()
                self.buffer.pop()
            else:
                await asyncio.sleep(self._backoff.next_delay())

    async def _create_database(self) -> None:
        """Retry (capped, jittered) until InfluxDB is up and the database exists."""
        for _attempt in itertools.count():
            if await self._ensure_database():
                self._backoff.reset()
                return
            await asyncio.sleep(self._backoff.next_delay())

    async def _ensure_database(self) -> bool:
        assert self._client is not None
        try:
            response = await self._client.post(
                f"{self.config.url}/query", data={"q": f'CREATE DATABASE "{self.config.database}"'}
            )
        except httpx.HTTPError as exc:
            self.counters.inc("influx.connect_errors")
            log.warning(kv("influx_unreachable", url=self.config.url, error=repr(exc)))
            return False
        if response.status_code != 200:
            log.warning(kv("influx_create_database_failed", status=response.status_code,
                           body=response.text[:500]))
            return False
        log.info(kv("influx_database_ready", url=self.config.url, database=self.config.database))
        self._database_ready = True
        return True

    async def _write(self, batch: Batch) -> bool:
        """True when the batch is done with (written, or rejected for good)."""
        assert self._client is not None
        if not self._database_ready and not await self._ensure_database():
            return False
        try:
            response = await self._client.post(
                f"{self.config.url}/write",
                params={"db": self.config.database, "precision": "ns"},
                content=batch.body(),
            )
        except httpx.HTTPError as exc:
            self.counters.inc("influx.connect_errors")
            log.warning(kv("influx_write_retry", lines=len(batch), error=repr(exc),
                           buffered_lines=self.buffer.lines))
            return False
        status = response.status_code
        if status in (200, 204):
            self.counters.inc("influx.written_lines", len(batch))
            self.counters.inc("influx.written_batches")
            return True
        body = response.text[:2000]
        if status >= 500 or status in _RETRYABLE_4XX:
            self.counters.inc("influx.server_errors")
            if status == 404:
                self._database_ready = False
            log.warning(kv("influx_write_retry", status=status, lines=len(batch), body=body,
                           buffered_lines=self.buffer.lines))
            return False
        self._count_rejected(batch, status, body)
        return True

    def _count_rejected(self, batch: Batch, status: int, body: str) -> None:
        # A partial write stored the other lines: InfluxDB lists each unparsable line and
        # counts the lines it refused to store (``dropped=N``).
        partial = "partial write" in body
        if partial:
            match = _DROPPED_RE.search(body)
            rejected = body.count("unable to parse") + (int(match.group(1)) if match else 0)
            rejected = min(max(rejected, 1), len(batch))
            self.counters.inc("influx.written_lines", len(batch) - rejected)
        else:
            rejected = len(batch)
        self.counters.inc("influx.rejected_batches")
        self.counters.inc("influx.rejected_lines", rejected)
        log.error(kv("influx_batch_rejected", status=status, lines=len(batch), rejected=rejected,
                     partial=partial, body=body))
