"""OSDP card readers (IEC 60839-11-5) on an RS-485 line: the gateway is the control panel."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import deque
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gridsense_protocol import DriverHealth, DriverState

from ...backoff import backoff_delay
from ...clock import ClockTrust
from ...logs import log_event
from ...portlease import LENT
from ..base import DRIVERS, Driver, DriverContext
from ..doors import register_door, unregister_door
from .anomaly import AnomalyWatch, Score, anomaly_incident
from .config import OsdpReaderConfig
from .credentials import CredentialStore, credential_store
from .decisions import Decision, decide
from .door import DoorStateMachine, Step
from .line import (
    SerialChannel,
    card_number,
    deny_commands,
    grant_commands,
    load_reader_profile,
    read_key_file,
    start_refresh,
)
from .passgate import PassGate, scanned_pass
from .reader import Reader
from .sync import AccessSync

log = logging.getLogger(__name__)

TICK_S = 0.25  # held-open checks, online polling
START_GRACE_S = 10.0  # a reader not online this long after start is reported offline
RECOVER_BASE_S, RECOVER_CAP_S = 3.0, 30.0  # re-enable a lost reader (longer than an SC handshake)
MAX_PENDING_EVENTS = 256  # libosdp thread -> event loop
PORT_RETRY_CAP_S = 30.0


class OsdpBus:
    """The control panel for every reader on one serial port."""

    def __init__(self, port: str, readers: list[OsdpReaderConfig], context: DriverContext,
                 store: CredentialStore, clock: ClockTrust | None = None) -> None:
        self.name = f"osdp:{port}"
        self.port = port
        self.context = context
        self.store = store
        folder = context.profiles_dir
        self.readers = [
            Reader(c, load_reader_profile(c.profile, folder), read_key_file(c.key_file),
                    DoorStateMachine(c.point, c.door_id, c.policy()))
            for c in readers
        ]
        bauds = {r.profile.baudrate for r in self.readers}
        if len(bauds) > 1:
            raise ValueError(f"readers on {port} disagree on the baud rate: {sorted(bauds)}")
        self.baudrate = bauds.pop()
        self.counters = dict.fromkeys(
            ("cards", "pins", "granted", "denied", "events_dropped", "serial_errors",
             "recoveries", "port_failures", "commands_failed", "bad_events"), 0)
        self._pending: deque[tuple[int, dict[str, Any]]] = deque()
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._cp: Any = None
        self._state = DriverState.STARTING
        self._detail: str | None = None
        # Lending the port to discovery: ``_lent`` asks the loop to close it; ``_closed`` says
        # it is closed; ``_returned`` lets the loop open it again.
        self._lent = False
        self._closed = asyncio.Event()
        self._closed.set()
        self._returned = asyncio.Event()
        self.counters.update(anomalies=0, anomaly_not_scored=0)
        models = {c.anomaly_model for c in readers if c.anomaly_model is not None}
        self._watches = {m: AnomalyWatch(m, self._anomalous, self.counters) for m in models}
        self.passes = PassGate(store, self.counters, clock)
        # A scanner mounted at one of these doors presents its passes here (drivers/doors.py).
        self._presenters = {r.door.door: functools.partial(self._on_pass, r)
                            for r in self.readers}

    # ---- health ----

    def health(self) -> DriverHealth:
        devices = {reader.config.point: reader.describe() for reader in self.readers}
        online = sum(r.online for r in self.readers)
        if self._state is not DriverState.STARTING:
            self._state = (DriverState.OK if online == len(self.readers)
                           else DriverState.DEGRADED if online else DriverState.DOWN)
        return DriverHealth(state=self._state, detail=self._detail or self.passes.clock_detail,
                            counters=dict(self.counters),
                            devices=devices)

    # ---- run ----

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        state_dir = self.context.state_dir or Path(".")
        for door, present in self._presenters.items():
            register_door(state_dir, door, present)
        try:
            await self._run()
        finally:
            for door, present in self._presenters.items():
                unregister_door(state_dir, door, present)

    async def _run(self) -> None:
        attempt = 0
        while True:
            if self._lent:
                await self._while_lent()
            self._closed.clear()  # from here a release waits for the port to be closed
            try:
                channel = await asyncio.to_thread(
                    SerialChannel, self.port, self.baudrate, self.counters)
            except Exception as exc:
                self._closed.set()
                self.counters["port_failures"] += 1
                self._detail = f"cannot open {self.port}: {exc}"
                delay = backoff_delay(attempt, 1.0, PORT_RETRY_CAP_S)
                attempt += 1
                log_event(log, "osdp_port_unavailable", logging.WARNING, port=self.port,
                          error=str(exc), retry_in_s=round(delay, 1))
                await self._tick_doors_for(delay)
                continue
            attempt = 0
            self._detail = None
            try:
                await self._serve(channel)
            finally:
                await self._stop_cp()
                channel.close()
                self._closed.set()

    async def _while_lent(self) -> None:
        """Lending is no fault: no reader_offline incident, and the readers get the start-up
        grace again when the line comes back."""
        self._detail = LENT
        for reader in self.readers:
            reader.online = reader.sc = reader.seen_online = False
        self._returned.clear()
        while self._lent:  # held-open doors still count while the readers are away
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._returned.wait(), TICK_S * 4)
            now = time.time()
            for reader in self.readers:
                self._apply(reader, reader.door.tick(now))
        self._detail = None

    async def release(self) -> None:
        """Lend the port: stop the control panel, close the port, stay closed until returned."""
        self._lent = True
        self._wake.set()
        await self._closed.wait()
        log_event(log, "osdp_port_lent", port=self.port)

    def take_back(self) -> None:
        self._lent = False
        self._returned.set()
        log_event(log, "osdp_port_taken_back", port=self.port)

    async def _tick_doors_for(self, seconds: float) -> None:
        """While the port is missing, the readers are offline and doors still age."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self._poll_online(force_offline=True)
            await asyncio.sleep(min(TICK_S * 4, max(end - time.monotonic(), 0)))

    async def _serve(self, channel: SerialChannel) -> None:
        import osdp

        if self._lent:  # lent while the port was being opened: not a byte on the line
            return

        infos = [osdp.PDInfo(r.config.address, channel, scbk=r.key,
                             flags=[osdp.LibFlag.EnforceSecure], name=r.config.point)
                 for r in self.readers]
        cp = osdp.ControlPanel(infos, log_level=osdp.LogLevel.Emergency)
        # Straight to our callback: the wrapper's own per-PD queue.Queue is never drained.
        cp.ctx.set_event_callback(self._on_osdp_event)
        start_refresh(cp)
        self._cp = cp
        self._state = DriverState.DOWN
        started = time.monotonic()
        for reader in self.readers:
            reader.recover_at = started + START_GRACE_S
        log_event(log, "osdp_started", port=self.port, readers=len(self.readers),
                  addresses=",".join(str(r.config.address) for r in self.readers))
        while not channel.broken and not self._lent:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), TICK_S)
            self._wake.clear()
            self._drain()
            self._poll_online(grace_until=started + START_GRACE_S)
            now = time.time()
            for reader in self.readers:
                self._apply(reader, reader.door.tick(now))
        if channel.broken:
            log_event(log, "osdp_port_lost", logging.WARNING, port=self.port)

    async def _stop_cp(self) -> None:
        cp, self._cp = self._cp, None
        if cp is not None:
            with contextlib.suppress(RuntimeError):
                await asyncio.to_thread(cp.stop)

    # ---- libosdp thread -> event loop ----

    def _on_osdp_event(self, pd: int, event: dict[str, Any]) -> int:
        if len(self._pending) >= MAX_PENDING_EVENTS:
            self.counters["events_dropped"] += 1
            return 0
        self._pending.append((pd, event))
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._wake.set)
        return 0

    def _drain(self) -> None:
        import osdp

        while self._pending:
            index, event = self._pending.popleft()
            if not 0 <= index < len(self.readers):
                self.counters["bad_events"] += 1
                continue
            reader = self.readers[index]
            kind = event.get("event")
            try:
                if kind == osdp.Event.CardRead:
                    text = scanned_pass(bytes(event.get("data", b"")))
                    if text is not None:
                        self._on_pass(reader, text, reader.config.point)
                    else:
                        self._on_card(reader, card_number(event))
                elif kind == osdp.Event.KeyPress:
                    self._on_keys(reader, bytes(event.get("data", b"")))
                elif kind == osdp.Event.Status:
                    self._on_status(reader, int(event.get("type", -1)),
                                    bytes(event.get("report", b"")))
            except Exception as exc:  # one malformed event must not stop the door
                self.counters["bad_events"] += 1
                log_event(log, "osdp_event_failed", logging.ERROR, point=reader.config.point,
                          error=repr(exc))

    # ---- what readers report ----

    def _on_card(self, reader: Reader, number: str) -> None:
        self.counters["cards"] += 1
        self._decide(reader, "card", card=number)

    def _on_keys(self, reader: Reader, data: bytes) -> None:
        for pin in reader.keypad.feed(data, time.monotonic()):
            self.counters["pins"] += 1
            self._decide(reader, "pin", pin=pin)

    def _on_pass(self, reader: Reader, text: str, via: str) -> None:
        """A pass read by this reader or by a scanner at its door (``via``: which one)."""
        now = time.time()
        self._conclude(reader, "pass", self.passes.decide(text, reader.config, now), now, via)

    def _decide(self, reader: Reader, method: str, card: str | None = None,
                pin: str | None = None) -> None:
        now = time.time()
        config = reader.config
        decision = decide(self.store, door=config.door_id, building=config.building, now=now,
                          card=card, pin=pin)
        self._conclude(reader, method, decision, now)

    def _conclude(self, reader: Reader, method: str, decision: Decision, now: float,
                  via: str | None = None) -> None:
        config = reader.config
        if decision.granted:
            self.counters["granted"] += 1
        else:
            self.counters["denied"] += 1
        self._signal(reader, decision.granted)
        passed = {"pass_id": decision.pass_id, "via": via} if method == "pass" else {}
        log_event(log, "access_decision", point=config.point, door=config.door_id,
                  method=method, granted=decision.granted, reason=decision.reason,
                  credential=decision.credential, card=decision.hashed, **passed)
        self._apply(reader, reader.door.decided(decision, method, now))
        if decision.granted and config.anomaly_model is not None:
            self._watches[config.anomaly_model].submit(
                decision.credential, config.door_id, _utc(now), (reader, decision))

    def _anomalous(self, score: Score, context: tuple[Reader, Decision]) -> None:
        reader, decision = context
        config = reader.config
        self.context.raise_incident(anomaly_incident(
            config.point, config.door_id, config.anomaly_severity, score, decision.credential,
            card=decision.hashed, pass_id=decision.pass_id))

    def _on_status(self, reader: Reader, report_type: int, report: bytes) -> None:
        import osdp

        now = time.time()
        profile = reader.profile
        if report_type == osdp.StatusReportType.Input:
            contact = profile.inputs.door_contact
            rex = profile.inputs.request_to_exit
            if rex is not None and rex < len(report) and report[rex]:
                self._apply(reader, reader.door.request_to_exit(now))
            if contact < len(report):
                is_open = report[contact] == profile.door_open_level
                self._apply(reader, reader.door.contact(is_open, now))
        elif report_type == osdp.StatusReportType.Local:
            if report:
                self._apply(reader, reader.door.tamper(bool(report[0]), now))
            reader.power_fault = len(report) > 1 and bool(report[1])

    def _poll_online(self, grace_until: float = 0.0, force_offline: bool = False) -> None:
        cp = self._cp
        online_mask = sc_mask = 0
        if cp is not None and not force_offline:
            online_mask, sc_mask = cp.status(), cp.sc_status()
        mono, now = time.monotonic(), time.time()
        for index, reader in enumerate(self.readers):
            online = bool(online_mask & (1 << index))
            reader.sc = bool(sc_mask & (1 << index))
            if online != reader.online:
                reader.online = online
                if online:
                    reader.seen_online, reader.recover_attempt = True, 0
                log_event(log, "osdp_reader_online" if online else "osdp_reader_offline",
                          logging.INFO if online else logging.WARNING,
                          point=reader.config.point, address=reader.config.address,
                          secure_channel=reader.sc)
            if online or reader.seen_online or mono >= grace_until or force_offline:
                self._apply(reader, reader.door.reader(online, now))
            if not online and cp is not None and mono >= reader.recover_at:
                self._recover(cp, reader, mono)

    def _recover(self, cp: Any, reader: Reader, mono: float) -> None:
        """libosdp waits 300 s before retrying a lost reader; re-enabling restarts it now."""
        address = reader.config.address
        with contextlib.suppress(Exception):
            cp.disable_pd(address)
            cp.enable_pd(address)
        self.counters["recoveries"] += 1
        delay = backoff_delay(reader.recover_attempt, RECOVER_BASE_S, RECOVER_CAP_S)
        reader.recover_attempt += 1
        reader.recover_at = mono + delay

    # ---- reader feedback: lock, LED, buzzer ----

    def _submit(self, reader: Reader, command: dict[str, Any]) -> None:
        cp = self._cp
        if cp is None or not reader.online:
            self.counters["commands_failed"] += 1
            return
        try:
            ok = cp.submit_command(reader.config.address, command)
        except Exception:
            ok = False
        if not ok:
            self.counters["commands_failed"] += 1

    def _signal(self, reader: Reader, granted: bool) -> None:
        commands = (grant_commands(reader.profile, reader.config.unlock_s) if granted
                    else deny_commands(reader.profile))
        for command in commands:
            self._submit(reader, command)

    # ---- door step -> access log + incidents ----

    def _apply(self, reader: Reader, step: Step) -> None:
        record = self.context.record_access
        version = self.store.version
        for event in step.events:
            if record is not None:
                record(event.record(reader.config.point, reader.config.door_id, version))
        for incident in step.incidents:
            self.context.raise_incident(incident)


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


@DRIVERS.register(OsdpReaderConfig)
def create(devices: list[OsdpReaderConfig], context: DriverContext) -> list[Driver]:
    if context.state_dir is None:
        raise ValueError("osdp_reader needs the agent's state folder for its credential copy")
    store = credential_store(context.shared, context.state_dir)
    context.downlink_handlers.append(AccessSync(store))
    by_port: dict[str, list[OsdpReaderConfig]] = {}
    for device in devices:
        by_port.setdefault(device.port, []).append(device)
    buses = [OsdpBus(port, readers, context, store) for port, readers in by_port.items()]
    for bus in buses:
        context.ports.register(bus.port, bus)
    return buses
