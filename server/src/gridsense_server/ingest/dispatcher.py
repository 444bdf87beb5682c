"""The asyncio side of ingest: route each decoded message to whoever handles its kind.

Telemetry goes straight to the InfluxDB writer (formatting is cheap, no awaiting). Incidents
and gateway state need the database, so they go through bounded queues to one worker each,
which keeps them in arrival order; a full queue makes the dispatcher wait, and with it the
hand-off and paho — backpressure all the way to the broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter

from gridsense_protocol import Envelope, Health, Incident, Status, Telemetry

from ..counters import Counters
from ..gateways import GatewayService
from ..incidents import IncidentService
from ..influx_writer import InfluxWriter
from ..line_protocol import health_line
from ..logs import kv
from .handoff import Handoff

log = logging.getLogger(__name__)

BATCH = 1000
# After a short batch, let messages gather before waking again: one wake-up per message
# would make the paho thread and the loop trade the GIL for every message.
COALESCE_S = 0.002
QUEUE_SIZE = 1000
INCIDENT_BATCH = 200


class Dispatcher:
    def __init__(
        self,
        handoff: Handoff[Envelope],
        writer: InfluxWriter,
        incidents: IncidentService,
        gateways: GatewayService,
        counters: Counters,
    ) -> None:
        self.handoff = handoff
        self.writer = writer
        self.incidents = incidents
        self.gateways = gateways
        self.counters = counters
        self._incident_queue: asyncio.Queue[Incident] = asyncio.Queue(QUEUE_SIZE)
        self._state_queue: asyncio.Queue[Status | Health] = asyncio.Queue(QUEUE_SIZE)
        self._tasks: list[asyncio.Task[None]] = []
        self._routing = False  # a batch is out of the hand-off but not yet routed
        self._batch_done = asyncio.Event()

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._route_loop(), name="ingest-router"),
            asyncio.create_task(self._incident_worker(), name="incident-worker"),
            asyncio.create_task(self._state_worker(), name="gateway-state-worker"),
        ]

    async def drain_and_stop(self, drain_s: float = 10.0) -> None:
        """After MQTT stopped: handle what was already acknowledged, then stop the workers."""
        try:
            async with asyncio.timeout(drain_s):
                while len(self.handoff) or self._routing:
                    self._batch_done.clear()
                    await self._batch_done.wait()
                await self._incident_queue.join()
                await self._state_queue.join()
        except TimeoutError:
            log.error(kv("ingest_drain_timeout", handoff=len(self.handoff),
                         incidents=self._incident_queue.qsize(),
                         states=self._state_queue.qsize()))
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def _route_loop(self) -> None:
        while True:
            batch = await self.handoff.get_batch(BATCH)
            self._routing = True
            kinds: Counter[str] = Counter()
            readings = 0
            for message in batch:
                kinds[message.kind.value] += 1
                readings += await self._route(message)
            # Counted per batch, not per message: each increment takes a lock.
            self.counters.inc("ingest.readings", readings)
            for kind, count in kinds.items():
                self.counters.inc(f"ingest.received.{kind}", count)
            self._routing = False
            self._batch_done.set()
            if len(batch) < BATCH:
                await asyncio.sleep(COALESCE_S)

    async def _route(self, message: Envelope) -> int:
        """Hand the message on; returns how many readings it carried."""
        self.gateways.touch(message.gateway, message.ts)
        if isinstance(message, Telemetry):
            self.writer.add_readings(message.gateway, message.readings)
            return len(message.readings)
        if isinstance(message, Incident):
            await self._incident_queue.put(message)
        elif isinstance(message, Status):
            await self._state_queue.put(message)
        elif isinstance(message, Health):
            self.writer.add_lines([health_line(message)])
            await self._state_queue.put(message)
        return 0

    async def _incident_worker(self) -> None:
        while True:
            # Whatever queued up while the last batch was being written goes in one
            # transaction; order is kept.
            batch = [await self._incident_queue.get()]
            while len(batch) < INCIDENT_BATCH and not self._incident_queue.empty():
                batch.append(self._incident_queue.get_nowait())
            try:
                await self.incidents.handle_batch(batch)
            except Exception:
                self.counters.inc("incidents.errors", len(batch))
                log.exception(kv("incident_batch_failed", events=len(batch),
                                 first_event=batch[0].id, gateway=batch[0].gateway,
                                 point=batch[0].point))
            finally:
                for _ in batch:
                    self._incident_queue.task_done()

    async def _state_worker(self) -> None:
        while True:
            message = await self._state_queue.get()
            try:
                if isinstance(message, Status):
                    await self.gateways.apply_status(message)
                else:
                    await self.gateways.apply_health(message)
            except Exception:
                self.counters.inc("gateways.errors")
                log.exception(kv("gateway_state_failed", event=message.id,
                                 gateway=message.gateway))
            finally:
                self._state_queue.task_done()
