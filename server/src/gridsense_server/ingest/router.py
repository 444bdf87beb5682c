"""The asyncio side of ingest: each received message is registered with its ledger, with the
effects its type waits for (the routing table), and handed to whoever makes them durable —
the InfluxDB writer directly, the database and the disk through one worker each."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from gridsense_protocol import (
    TS_MIN,
    AccessEvent,
    CommandResult,
    Health,
    Incident,
    Snapshot,
    Status,
    Telemetry,
    utc_now,
)

from ..access_control.log import AccessLogService, access_line
from ..acks import (
    ACCESS_LOG_ROWS,
    COMMAND_RESULT_ROW,
    GATEWAY_ROW,
    INCIDENT_ROWS,
    INFLUX_LINES,
    SNAPSHOT_FILE,
    AckLedger,
    Effect,
    Effects,
    InboundMessage,
)
from ..backoff import Backoff
from ..config import IngestConfig
from ..counters import Counters
from ..gateways.status import GatewayService
from ..logs import kv
from ..tasks import cancel_and_wait
from ..timeseries.line_protocol import health_line, timestamp_ns
from ..timeseries.writer import InfluxWriter
from ..workorders.incidents import IncidentService
from ..workorders.snapshots import SnapshotStore
from .authority import GatewayAuthority
from .command_results import CommandResultService
from .handoff import Handoff
from .workers import BatchHandler, BatchWorker

log = logging.getLogger(__name__)

BATCH = 1000
# After a short batch, let messages gather before waking again: one wake-up per message
# would make the paho thread and the loop trade the GIL for every message.
COALESCE_S = 0.002
ROW_BATCH = 200  # incidents or access events per transaction
SNAPSHOT_QUEUE_SIZE = 16  # snapshots are up to 1 MB each: a short queue bounds their memory


@dataclass(frozen=True, slots=True)
class Source:
    """One MQTT session's messages and the ledger that acknowledges them."""

    handoff: Handoff[InboundMessage]
    ledger: AckLedger


@dataclass(frozen=True, slots=True)
class Route:
    """What one message type waits for, and who makes it durable."""

    effects: Effects
    # Synchronous hand-off to the InfluxDB writer (no awaiting); returns the readings carried.
    write: Callable[[InboundMessage], int] | None = None
    worker: BatchWorker | None = None  # the database or disk part, in arrival order
    touches_gateway: bool = True  # the message says its gateway is alive


@dataclass(frozen=True, slots=True)
class Services:
    """Whoever makes the effects durable."""

    writer: InfluxWriter
    incidents: IncidentService
    gateways: GatewayService
    commands: CommandResultService
    snapshots: SnapshotStore | None = None
    access: AccessLogService | None = None


class Router:
    def __init__(self, sources: list[Source], services: Services, counters: Counters,
                 bounds: IngestConfig | None = None,
                 authority: GatewayAuthority | None = None) -> None:
        self.sources = sources
        self.bounds = bounds or IngestConfig()
        self.authority = authority  # None: every gateway may speak for any point (tests only)
        self._window_ns = (0, 0)  # the readings' time window of the batch being routed
        self.services = services
        self.counters = counters
        self.workers: list[BatchWorker] = []
        self.routes = self._routing_table()
        self._tasks: list[asyncio.Task[None]] = []
        self._routing = 0  # batches out of a hand-off but not yet routed
        self._routed = asyncio.Event()  # set after every routed batch

    def _routing_table(self) -> dict[type, Route]:
        s = self.services
        state = self._worker("gateways", GATEWAY_ROW, _each(self._apply_state))
        routes: dict[type, Route] = {
            Telemetry: Route(Effects(INFLUX_LINES), write=self._write_readings),
            Incident: Route(Effects(INCIDENT_ROWS), worker=self._worker(
                "incidents", INCIDENT_ROWS, s.incidents.handle_batch,
                batch_size=ROW_BATCH, warm_up=s.incidents.warm_up)),
            Health: Route(Effects(INFLUX_LINES, GATEWAY_ROW), write=self._write_health,
                          worker=state),
            Status: Route(Effects(GATEWAY_ROW), worker=state),
            CommandResult: Route(Effects(COMMAND_RESULT_ROW), worker=self._worker(
                "command_results", COMMAND_RESULT_ROW, _each(s.commands.record))),
        }
        if s.access is not None:
            routes[AccessEvent] = Route(
                Effects(INFLUX_LINES, ACCESS_LOG_ROWS), write=self._write_access,
                worker=self._worker("access", ACCESS_LOG_ROWS, s.access.record_batch,
                                    batch_size=ROW_BATCH))
        if s.snapshots is not None:
            # Stored under its event id: it may come before or after its incident row.
            routes[Snapshot] = Route(Effects(SNAPSHOT_FILE), touches_gateway=False,
                                     worker=self._worker(
                                         "snapshots", SNAPSHOT_FILE,
                                         _each(partial(_save_snapshot, s.snapshots,
                                                       self.counters)),
                                         queue_size=SNAPSHOT_QUEUE_SIZE))
        return routes

    def _worker(self, name: str, effect: Effect, handle: BatchHandler,
                **options: Any) -> BatchWorker:
        worker = BatchWorker(name, effect, handle, self.counters, **options)
        self.workers.append(worker)
        return worker

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._route_loop(source), name=f"ingest-router-{i}")
            for i, source in enumerate(self.sources)
        ]
        self._tasks += [asyncio.create_task(w.run(), name=f"ingest-{w.name}")
                        for w in self.workers]

    async def drain(self, within_s: float = 10.0) -> bool:
        """Once MQTT stopped delivering: wait until every received message was handed to its
        effect (the writer then makes the readings durable). False on timeout."""
        try:
            async with asyncio.timeout(within_s):
                while self._routing or any(len(s.handoff) for s in self.sources):
                    self._routed.clear()
                    await self._routed.wait()
                for worker in self.workers:
                    await worker.queue.join()
            return True
        except TimeoutError:
            log.error(kv("ingest_drain_timeout",
                         handoff=sum(len(s.handoff) for s in self.sources),
                         **{w.name: w.queue.qsize() for w in self.workers}))
            return False

    async def stop(self) -> None:
        await cancel_and_wait(self._tasks)
        self._tasks = []

    async def _route_loop(self, source: Source) -> None:
        ledger = source.ledger
        routes = self.routes
        touch = self.services.gateways.touch
        authority = self.authority
        while True:
            batch = await source.handoff.get_batch(BATCH)
            self._routing += 1
            try:
                kinds: Counter[str] = Counter()
                readings = 0
                earliest, latest = self._time_window()
                self._window_ns = (timestamp_ns(earliest), timestamp_ns(latest))
                for message in batch:
                    decoded = message.decoded
                    route = routes.get(type(decoded))
                    if route is None or decoded is None:  # invalid (counted by the bridge)
                        ledger.refuse(message, message.reason or "no route for this message")
                        continue
                    refused = _out_of_time(decoded, route, earliest, latest)
                    if refused is not None:
                        self.counters.inc(f"ingest.refused.{refused}")
                        ledger.refuse(message, _time_reason(refused, earliest, latest))
                        continue
                    if authority is not None:
                        refusal = authority.check(decoded)
                        if refusal is not None:
                            self.counters.inc(f"ingest.refused.{refusal.key}")
                            ledger.refuse(message, refusal.reason)
                            continue
                    kinds[decoded.kind.value] += 1
                    if route.touches_gateway:
                        touch(decoded.gateway, decoded.ts)
                    ledger.register(message, route.effects)
                    if route.write is not None:
                        readings += route.write(message)
                    if route.worker is not None:
                        await route.worker.queue.put(message)
                # Counted per batch, not per message: each increment takes a lock.
                self.counters.inc("ingest.readings", readings)
                for kind, count in kinds.items():
                    self.counters.inc(f"ingest.received.{kind}", count)
            finally:
                self._routing -= 1
                self._routed.set()
            if len(batch) < BATCH:
                await asyncio.sleep(COALESCE_S)

    def _time_window(self) -> tuple[datetime, datetime]:
        """The times accepted now: backfill down to ``max_age_s`` (what the time-series store
        keeps), and no further ahead of this server's clock than ``max_clock_ahead_s``."""
        now = utc_now()
        bounds = self.bounds
        earliest = TS_MIN if bounds.max_age_s is None else max(
            TS_MIN, now - timedelta(seconds=bounds.max_age_s))
        return earliest, now + timedelta(seconds=bounds.max_clock_ahead_s)

    async def _apply_state(self, message: Status | Health) -> None:
        if isinstance(message, Status):
            await self.services.gateways.apply_status(message)
        else:
            await self.services.gateways.apply_health(message)

    def _write_readings(self, message: InboundMessage) -> int:
        telemetry = message.decoded
        assert isinstance(telemetry, Telemetry)
        writer = self.services.writer
        lines = writer.format_readings(telemetry.gateway, telemetry.readings)
        # Checked on the formatted ns: a datetime comparison per reading costs ~1 µs.
        lo, hi = writer.formatter.span
        earliest, latest = self._window_ns
        if lo < earliest or hi > latest:
            refused = "too_old" if lo < earliest else "clock_ahead"
            self.counters.inc(f"ingest.refused.{refused}")
            message.failed(INFLUX_LINES, f"{refused}: a reading's time is out of "
                                         f"[{_iso_ns(earliest)}, {_iso_ns(latest)}]")
            return 0
        writer.add_lines(lines, message)
        message.release()
        return len(telemetry.readings)

    def _write_health(self, message: InboundMessage) -> int:
        assert isinstance(message.decoded, Health)
        self.services.writer.add_lines([health_line(message.decoded)], message)
        return 0

    def _write_access(self, message: InboundMessage) -> int:
        event = message.decoded
        assert isinstance(event, AccessEvent) and self.services.access is not None
        grid = self.services.access.grid_of(event.point)
        self.services.writer.add_lines([access_line(event, grid)], message)
        return 0


def _out_of_time(decoded: Any, route: Route, earliest: datetime, latest: datetime) -> str | None:
    """Why a message's own time is refused, or None (its readings: as they are formatted)."""
    if isinstance(decoded, Snapshot):
        return None  # no time of its own: it follows its incident
    if decoded.ts > latest:
        return "clock_ahead"
    if route.write is None:
        return None  # only what goes to the time-series store has a floor beyond the protocol's
    if decoded.ts < earliest:
        return "too_old"
    return None  # a telemetry message's readings: checked as they are formatted


def _time_reason(refused: str, earliest: datetime, latest: datetime) -> str:
    if refused == "clock_ahead":
        return f"clock_ahead: a time after {latest.isoformat()} (server clock + allowance)"
    return f"too_old: a time before {earliest.isoformat()} (the time-series store's floor)"


def _iso_ns(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).isoformat()


def _each(handle: Callable[[Any], Awaitable[object]]) -> BatchHandler:
    """A batch handler for services that take one message at a time."""
    async def handle_batch(batch: list[Any]) -> None:
        for decoded in batch:
            await handle(decoded)
    return handle_batch


async def _save_snapshot(store: SnapshotStore, counters: Counters, snapshot: Snapshot) -> None:
    backoff = Backoff(initial_s=0.5, cap_s=30.0)
    while True:
        try:
            await asyncio.to_thread(store.save, snapshot.gateway, snapshot.event, snapshot.jpeg)
            break
        except OSError as exc:  # disk full or failing: not acked, retried
            delay = backoff.next_delay()
            counters.inc("snapshots.store_failures")
            log.error(kv("snapshot_store_failed", gateway=snapshot.gateway,
                         event=snapshot.event, error=repr(exc), retry_in_s=round(delay, 2)))
            await asyncio.sleep(delay)
    log.info(kv("snapshot_stored", gateway=snapshot.gateway, event=snapshot.event,
                seq=snapshot.seq, bytes=len(snapshot.jpeg)))
