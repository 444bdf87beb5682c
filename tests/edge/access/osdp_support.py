"""A real libosdp reader simulator on a pty, and the agent's OSDP driver serving it in-process.

The driver's DriverContext sinks are plain lists here: what the agent would put in its outbox.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gridsense_edge.clock import ClockTrust
from gridsense_edge.configtypes import default_profiles_dir
from gridsense_edge.drivers.base import DriverContext
from gridsense_edge.drivers.osdp.config import OsdpReaderConfig
from gridsense_edge.drivers.osdp.credentials import (
    Credential,
    CredentialStore,
    card_hash,
    credential_store,
    pin_hash,
)
from gridsense_edge.drivers.osdp.driver import OsdpBus
from gridsense_edge.events import AccessRecord, IncidentEvent
from gridsense_edge.simulator.osdp import OsdpReaderSimulator, ReceivedCommand, SimulatedReader

SITE_KEY = bytes(range(100, 132))
KEYS = {1: bytes(range(16)), 2: bytes(range(16, 32))}


def write_key(folder: Path, address: int) -> Path:
    path = folder / f"reader-{address}.key"
    path.write_text(KEYS[address].hex())
    os.chmod(path, 0o600)
    return path


def resident(ident: str, card: str | None = None, pin: str | None = None,
             doors: tuple[str, ...] = ("b3-east",)) -> Credential:
    return Credential(ident, card_hash(SITE_KEY, card) if card else None,
                      pin_hash(SITE_KEY, pin) if pin else None, None, None, doors, ())


@dataclass
class Harness:
    sim: OsdpReaderSimulator
    bus: OsdpBus
    store: CredentialStore
    records: list[AccessRecord] = field(default_factory=list)
    incidents: list[IncidentEvent] = field(default_factory=list)

    async def until(self, condition: Callable[[], Any], timeout_s: float = 20.0) -> Any:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            value = condition()
            if value:
                return value
            await asyncio.sleep(0.05)
        raise AssertionError(f"condition not met within {timeout_s} s")

    def results(self, point: str) -> list[str]:
        return [r.result.value for r in self.records if r.point == point]

    def incident_states(self, kind: str) -> list[tuple[str, str]]:
        return [(i.point, i.state.value) for i in self.incidents if i.type == kind]

    async def command(self, predicate: Callable[[ReceivedCommand], bool], timeout_s: float,
                      after: float) -> ReceivedCommand | None:
        """The reader's command log, waited on off the loop (the driver runs on this loop)."""
        return await asyncio.to_thread(self.sim.wait_for_command, predicate, timeout_s, after)

    async def online(self) -> None:
        await self.until(lambda: all(r.online and r.sc for r in self.bus.readers))


@contextmanager
def osdp_rig(tmp_path: Path, addresses: tuple[int, ...] = (1, 2),
             clock: ClockTrust | None = None, **overrides: Any) -> Iterator[Harness]:
    link = tmp_path / "ttyOSDP0"
    sim = OsdpReaderSimulator(link, [SimulatedReader(a, KEYS[a]) for a in addresses], seed=7)
    sim.start()
    try:
        configs = [
            OsdpReaderConfig(type="osdp_reader", point=f"gw.door{a}", port=str(link), address=a,
                             key_file=write_key(tmp_path, a), door="b3-east" if a == 1 else None,
                             building="b3", **overrides)
            for a in addresses
        ]
        records: list[AccessRecord] = []
        incidents: list[IncidentEvent] = []

        def record(r: AccessRecord) -> str:
            records.append(r)
            return str(len(records))

        def raise_incident(i: IncidentEvent) -> str:
            incidents.append(i)
            return str(len(incidents))

        context = DriverContext(gateway="gw", emit=lambda *_: None, buses={},
                                profiles_dir=default_profiles_dir(),
                                raise_incident=raise_incident, record_access=record,
                                state_dir=tmp_path / "state")
        store = credential_store(context.shared, tmp_path / "state")
        bus = OsdpBus(str(link), configs, context, store, clock)
        yield Harness(sim, bus, store, records, incidents)
        store.close()
    finally:
        sim.stop()


async def run_bus(h: Harness) -> asyncio.Task[None]:
    task = asyncio.create_task(h.bus.run())
    await h.online()
    return task


async def stop_bus(task: asyncio.Task[None]) -> None:
    task.cancel()
    with suppress(asyncio.CancelledError):
        await task
