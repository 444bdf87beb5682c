"""The asyncio side of ingest: route each delivery to whoever makes its effect durable.

Each MQTT session has its own hand-off, ledger and router task, so a flood of telemetry never
queues in front of an incident. Telemetry (and the health line) goes straight to the InfluxDB
writer (formatting is cheap, no awaiting). Incidents, status, health and command results need
the database, so they go through bounded queues to one worker each, which keeps them in
arrival order; a full queue makes the router wait, and with it the hand-off and paho.

Every delivery is registered with its ledger first, with the number of effects it has; each
effect reports when it is durable, and the ledger acknowledges the message after that.
A message whose handling fails for a reason that retrying cannot fix (a bug, not an outage)
is logged, counted, and acknowledged all the same: a poison message must not stall ingest.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from gridsense_protocol import (
    AccessEvent,
    CommandResult,
    Health,
    Incident,
    Snapshot,
    Status,
    Telemetry,
)

from ..access_control.log import AccessLogService, access_line
from ..backoff import Backoff
from ..command_results import CommandResultService
from ..counters import Counters
from ..gateways.status import GatewayService
from ..logs import kv
from ..timeseries.line_protocol import health_line
from ..timeseries.writer import InfluxWriter
from ..workorders.incidents import IncidentService
from ..workorders.snapshots import SnapshotStore
from .acks import AckLedger, Delivery
from .handoff import Handoff

log = logging.getLogger(__name__)

BATCH = 1000
# After a short batch, let messages gather before waking again: one wake-up per message
# would make the paho thread and the loop trade the GIL for every message.
COALESCE_S = 0.002
QUEUE_SIZE = 1000
INCIDENT_BATCH = 200
SNAPSHOT_QUEUE_SIZE = 16


@dataclass(frozen=True, slots=True)
class Source:
    """One MQTT session's deliveries and the ledger that acknowledges them."""

    handoff: Handoff[Delivery]
    ledger: AckLedger


class Dispatcher:
    def __init__(
        self,
        sources: list[Source],
        writer: InfluxWriter,
        incidents: IncidentService,
        gateways: GatewayService,
        commands: CommandResultService,
        counters: Counters,
        *,
        snapshots: SnapshotStore | None = None,
        access: AccessLogService | None = None,
    ) -> None:
        self.sources = sources
        self.writer = writer
        self.incidents = incidents
        self.gateways = gateways
        self.commands = commands
        self.counters = counters
        self._incident_queue: asyncio.Queue[Delivery] = asyncio.Queue(QUEUE_SIZE)
        self._state_queue: asyncio.Queue[Delivery] = asyncio.Queue(QUEUE_SIZE)
        self.access = access
        self._access_queue: asyncio.Queue[Delivery] = asyncio.Queue(QUEUE_SIZE)
        self.snapshots = snapshots
        # Snapshots are up to 1 MB each: a short queue bounds the memory they hold.
        self._snapshot_queue: asyncio.Queue[Delivery] = asyncio.Queue(SNAPSHOT_QUEUE_SIZE)
        self._tasks: list[asyncio.Task[None]] = []
        self._routing = 0  # batches out of a hand-off but not yet routed
        self._routed = asyncio.Event()  # set after every routed batch

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._route_loop(source), name=f"ingest-router-{i}")
            for i, source in enumerate(self.sources)
        ]
        self._tasks += [
            asyncio.create_task(self._incident_worker(), name="incident-worker"),
            asyncio.create_task(self._state_worker(), name="gateway-state-worker"),
            asyncio.create_task(self._access_worker(), name="access-log-worker"),
            asyncio.create_task(self._snapshot_worker(), name="snapshot-worker"),
        ]

    async def drain(self, within_s: float = 10.0) -> bool:
        """Once MQTT stopped delivering: wait until every received message was handed to its
        effect (the writer then makes the readings durable). False on timeout."""
        try:
            async with asyncio.timeout(within_s):
                while self._routing or any(len(s.handoff) for s in self.sources):
                    self._routed.clear()
                    await self._routed.wait()
                await self._incident_queue.join()
                await self._state_queue.join()
                await self._access_queue.join()
                await self._snapshot_queue.join()
            return True
        except TimeoutError:
            log.error(kv("ingest_drain_timeout",
                         handoff=sum(len(s.handoff) for s in self.sources),
                         incidents=self._incident_queue.qsize(),
                         states=self._state_queue.qsize()))
            return False

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def _route_loop(self, source: Source) -> None:
        while True:
            batch = await source.handoff.get_batch(BATCH)
            self._routing += 1
            try:
                kinds: Counter[str] = Counter()
                readings = 0
                for delivery in batch:
                    message = delivery.message
                    kinds[message.kind.value if message is not None else "invalid"] += 1
                    readings += await self._route(source.ledger, delivery)
                # Counted per batch, not per message: each increment takes a lock.
                self.counters.inc("ingest.readings", readings)
                for kind, count in kinds.items():
                    if kind != "invalid":
                        self.counters.inc(f"ingest.received.{kind}", count)
            finally:
                self._routing -= 1
                self._routed.set()
            if len(batch) < BATCH:
                await asyncio.sleep(COALESCE_S)

    async def _route(self, ledger: AckLedger, delivery: Delivery) -> int:
        """Hand the delivery on; returns how many readings it carried."""
        message = delivery.message
        if message is None:  # invalid: counted by the consumer, nothing to store
            ledger.register(delivery, 0)
            return 0
        if isinstance(message, Snapshot):
            # Stored under its event id: it may come before or after its incident row.
            if self.snapshots is None:
                ledger.register(delivery, 0)
            else:
                ledger.register(delivery, 1)
                await self._snapshot_queue.put(delivery)
            return 0
        self.gateways.touch(message.gateway, message.ts)
        if isinstance(message, Telemetry):
            ledger.register(delivery, 1)
            self.writer.add_readings(message.gateway, message.readings, delivery)
            delivery.release()
            return len(message.readings)
        if isinstance(message, Incident):
            ledger.register(delivery, 1)
            await self._incident_queue.put(delivery)
        elif isinstance(message, Health):
            ledger.register(delivery, 2)  # the InfluxDB line and the gateway row
            self.writer.add_lines([health_line(message)], delivery)
            await self._state_queue.put(delivery)
        elif isinstance(message, AccessEvent) and self.access is not None:
            # Durable twice before the ack: the access log row and the InfluxDB line.
            ledger.register(delivery, 2)
            grid = self.access.grid_of(message.point)
            self.writer.add_lines([access_line(message, grid)], delivery)
            await self._access_queue.put(delivery)
        elif isinstance(message, Status | CommandResult):
            ledger.register(delivery, 1)
            await self._state_queue.put(delivery)
        else:
            ledger.register(delivery, 0)  # a kind the server does not subscribe to
        return 0

    async def _incident_worker(self) -> None:
        try:
            await asyncio.to_thread(self.incidents.warm_up)
        except Exception:  # only a head start: ingest works without it
            log.exception(kv("incident_warm_up_failed"))
        while True:
            # Whatever queued up while the last batch was being written goes in one
            # transaction; order is kept.
            batch = [await self._incident_queue.get()]
            while len(batch) < INCIDENT_BATCH and not self._incident_queue.empty():
                batch.append(self._incident_queue.get_nowait())
            try:
                await self._handle_incidents(batch)
            finally:
                for _ in batch:
                    self._incident_queue.task_done()

    async def _handle_incidents(self, batch: list[Delivery]) -> None:
        messages = [d.message for d in batch if isinstance(d.message, Incident)]
        try:
            await self.incidents.handle_batch(messages)  # records their seqs as well
        except Exception:
            # One bad message must not sink its batch: redo them one by one.
            log.exception(kv("incident_batch_failed", events=len(batch),
                             first_event=messages[0].id, gateway=messages[0].gateway))
            for delivery in batch:
                await _guarded(self._incident_alone, delivery, self.counters, "incidents.errors")
                _recorded_in_transaction(delivery)
            return
        for delivery in batch:
            _recorded_in_transaction(delivery)

    async def _incident_alone(self, delivery: Delivery) -> None:
        assert isinstance(delivery.message, Incident)
        await self.incidents.handle_batch([delivery.message])

    async def _snapshot_worker(self) -> None:
        backoff = Backoff(initial_s=0.5, cap_s=30.0)
        while True:
            delivery = await self._snapshot_queue.get()
            snapshot = delivery.message
            assert isinstance(snapshot, Snapshot) and self.snapshots is not None
            try:
                while True:
                    try:
                        await asyncio.to_thread(self.snapshots.save, snapshot.gateway,
                                                snapshot.event, snapshot.jpeg)
                        backoff.reset()
                        break
                    except OSError as exc:  # disk full or failing: not acked, retried
                        delay = backoff.next_delay()
                        self.counters.inc("snapshots.store_failures")
                        log.error(kv("snapshot_store_failed", gateway=snapshot.gateway,
                                     event=snapshot.event, error=repr(exc),
                                     retry_in_s=round(delay, 2)))
                        await asyncio.sleep(delay)
                log.info(kv("snapshot_stored", gateway=snapshot.gateway, event=snapshot.event,
                            seq=snapshot.seq, bytes=len(snapshot.jpeg)))
                delivery.release()
                delivery.part_done()
            finally:
                self._snapshot_queue.task_done()

    async def _access_worker(self) -> None:
        while True:
            batch = [await self._access_queue.get()]
            while len(batch) < INCIDENT_BATCH and not self._access_queue.empty():
                batch.append(self._access_queue.get_nowait())
            try:
                await self._handle_access(batch)
            finally:
                for _ in batch:
                    self._access_queue.task_done()

    async def _handle_access(self, batch: list[Delivery]) -> None:
        assert self.access is not None
        messages = [d.message for d in batch if isinstance(d.message, AccessEvent)]
        try:
            await self.access.record_batch(messages)  # records their seqs as well
        except Exception:
            log.exception(kv("access_batch_failed", events=len(batch),
                             gateway=messages[0].gateway))
            for delivery in batch:
                await _guarded(self._access_alone, delivery, self.counters, "access.errors")
                _recorded_in_transaction(delivery)
            return
        for delivery in batch:
            _recorded_in_transaction(delivery)

    async def _access_alone(self, delivery: Delivery) -> None:
        assert self.access is not None and isinstance(delivery.message, AccessEvent)
        await self.access.record_batch([delivery.message])

    async def _state_worker(self) -> None:
        while True:
            delivery = await self._state_queue.get()
            try:
                await _guarded(self._apply_state, delivery, self.counters, "gateways.errors")
                if isinstance(delivery.message, CommandResult):
                    delivery.sequence = None  # recorded in the result's transaction
                delivery.part_done()
            finally:
                self._state_queue.task_done()

    async def _apply_state(self, delivery: Delivery) -> None:
        message = delivery.message
        if isinstance(message, Status):
            await self.gateways.apply_status(message)
        elif isinstance(message, Health):
            await self.gateways.apply_health(message)
        elif isinstance(message, CommandResult):
            await self.commands.record(message)


def _recorded_in_transaction(delivery: Delivery) -> None:
    """The incident transaction recorded the seq too (or, if the message could not be
    handled, deliberately did not: the checker then shows it as missing)."""
    delivery.sequence = None
    delivery.part_done()


async def _guarded(handle: Callable[[Delivery], Awaitable[None]], delivery: Delivery,
                   counters: Counters, counter: str) -> None:
    """Run ``handle``; a failure (not an outage: those retry inside) is logged and counted,
    and its seq is left unrecorded so the checker reports the message as missing."""
    try:
        await handle(delivery)
    except Exception:
        counters.inc(counter)
        delivery.sequence = None
        message = delivery.message
        log.exception(kv("message_handling_failed", event=message.id if message else None,
                         gateway=message.gateway if message else None,
                         kind=message.kind.value if message else None))
