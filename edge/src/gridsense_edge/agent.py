"""The agent: config -> drivers -> rules -> publisher -> outbox -> uplink, on one asyncio loop."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import yaml

from gridsense_protocol import AlarmState, Command, ConfigUpdate, DriverState, Reading
from gridsense_protocol.gateway_config import config_hash

from .backoff import backoff_delay
from .config import GatewayConfig
from .drivers import DRIVERS, CommandReply, DownlinkHandler, Driver, DriverContext
from .events import AccessRecord, IncidentEvent
from .health import HealthReporter, HealthSource, release_free_heap
from .logs import log_event
from .metrics import GatewayState, MetricsListener, gateway_metrics
from .portlease import PortControlServer, PortLeases
from .reconfig.applier import ConfigApplier
from .reconfig.handler import RemoteConfigHandler
from .reconfig.plan import ChangePlan
from .reconfig.store import RemoteConfigStore
from .rules import RULES, Rule
from .systemd import notify, watchdog_interval_s, watchdog_loop
from .transport.confirmations import Confirmations
from .transport.outbox import Outbox, OutboxLimits, SqliteOutbox
from .transport.probe import ProbeOutcome, probe_broker
from .transport.publisher import Publisher
from .transport.uplink import Uplink

log = logging.getLogger(__name__)

TELEMETRY_FLUSH_S = 1.0
TELEMETRY_MAX_BATCH = 500  # readings per Telemetry message (protocol allows 2000)
DRIVER_RESTART_CAP_S = 60.0
DRAIN_TIMEOUT_S = 5.0
STARTUP_SETTLE_S = 3.0
BROKER_PROBE_S = 5.0  # a new broker must accept this gateway within this


async def cancel_and_wait(tasks: list[asyncio.Task[None]], timeout_s: float = 10.0) -> None:
    """Cancel and wait, cancelling again if a task swallowed it (wait_for on 3.11 can)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    pending = {t for t in tasks if not t.done()}
    while pending and loop.time() < deadline:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=0.5)
    for task in pending:
        log_event(log, "task_did_not_stop", logging.ERROR, task=task.get_name())


@dataclass
class DriverGroup:
    """The drivers of one type: restarted together when their part of the config changes."""

    drivers: list[Driver]
    context: DriverContext
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


class Agent:
    def __init__(self, config: GatewayConfig, outbox: Outbox | None = None) -> None:
        self.config = config
        self.gateway = config.gateway.id
        self._given_outbox = outbox
        self.outbox: Outbox | None = None
        self._pending: list[Reading] = []
        self._active: dict[tuple[str, str], str] = {}  # (point, type) -> event id of the raise
        self.counters = dict.fromkeys(
            ("readings", "reported", "incidents", "rule_errors", "telemetry_messages",
             "driver_restarts", "access_events"), 0,
        )
        self.groups: dict[str, DriverGroup] = {}
        self.rules: list[Rule] = []
        self.uplink: Uplink | None = None
        self.publisher: Publisher | None = None
        self.applier: ConfigApplier | None = None
        self._health: HealthReporter | None = None
        self._remote: list[DownlinkHandler] = []
        self.metrics: MetricsListener | None = None  # when metrics.port is set
        self.ports = PortLeases()

    @property
    def drivers(self) -> list[Driver]:
        return [d for group in self.groups.values() for d in group.drivers]

    @property
    def downlink_handlers(self) -> list[DownlinkHandler]:
        return [*self._remote,
                *(h for group in self.groups.values() for h in group.context.downlink_handlers)]

    def _open_outbox(self) -> Outbox:
        if self._given_outbox is not None:
            return self._given_outbox
        section = self.config.outbox
        limits = OutboxLimits(
            bulk_max_bytes=int(section.max_mb * 2**20),
            bulk_max_age_s=section.max_age_h * 3600.0,
            incident_max_bytes=int(section.incident_max_mb * 2**20),
            min_free_disk_bytes=int(section.min_free_disk_mb * 2**20),
        )
        return SqliteOutbox(self.config.gateway.state_dir, limits)

    def _new_uplink(self, config: GatewayConfig, outbox: Outbox) -> Uplink:
        assert self.publisher is not None
        uplink = Uplink(
            self.gateway, config.mqtt.host, config.mqtt.port, outbox,
            self.publisher.status, keepalive_s=config.mqtt.keepalive_s,
            password_file=config.mqtt.password_file, max_inflight=config.mqtt.max_inflight,
            reconnect_max_s=config.mqtt.reconnect_max_s,
            acknowledgement=config.mqtt.acknowledgement,
            confirmations=Confirmations(config.mqtt.confirm_timeout_s,
                                        config.mqtt.confirm_timeout_max_s,
                                        config.mqtt.max_unconfirmed),
            tls=config.mqtt.tls.context() if config.mqtt.tls else None,
            protocol=config.mqtt.protocol,
        )
        outbox.on_stored = uplink.notify
        uplink.downlink.on_message = self._on_downlink
        return uplink

    def _build(self, outbox: Outbox) -> None:
        self.publisher = Publisher(self.gateway, outbox)
        self.applier = ConfigApplier(self, RemoteConfigStore(self.config.gateway.state_dir),
                                     _file_hash(self.config))
        saved = self.applier.saved()
        if saved is not None:  # the last good remote version outlives a restart
            self.config = saved
        self._remote = [RemoteConfigHandler(self.applier)]
        self.uplink = self._new_uplink(self.config, outbox)
        for type_name in _device_types(self.config):
            self._make_group(type_name)
        self.rules = [RULES.get(rule.type).factory(rule) for rule in self.config.rules]

    def _make_group(self, type_name: str) -> DriverGroup:
        """Each type gets its own context (and shared resources: its serial ports), so one
        type restarts without touching the others."""
        config = self.config
        context = DriverContext(
            gateway=self.gateway, emit=self._on_reading, buses=config.bus_map(),
            profiles_dir=config.profiles_folder, raise_incident=self._raise,
            record_access=self._record_access, state_dir=config.gateway.state_dir,
            ports=self.ports,
        )
        devices = [d for d in config.devices if d.type == type_name]
        group = DriverGroup(DRIVERS.get(type_name).factory(devices, context), context)
        self.groups[type_name] = group
        return group

    def _start_group(self, group: DriverGroup) -> None:
        group.tasks = [asyncio.create_task(self._supervise(d.name, d.run), name=d.name)
                       for d in group.drivers]

    async def _stop_group(self, group: DriverGroup) -> None:
        await cancel_and_wait(group.tasks)
        await group.context.shared.close()

    def _health_sources(self) -> list[HealthSource]:
        # A rule with a model of its own reports it beside the drivers (loaded, failing, off).
        return [*self.drivers, *(r for r in self.rules if isinstance(r, HealthSource))]

    async def run(self, stop: asyncio.Event) -> None:
        state_dir = self.config.gateway.state_dir
        state_dir.mkdir(parents=True, exist_ok=True)
        self.outbox = outbox = self._open_outbox()
        self._build(outbox)
        assert self.uplink is not None and self.publisher is not None
        self._health = health = HealthReporter(state_dir, self._health_sources(), self._counters)
        log_event(log, "agent_started", gateway=self.gateway, version=self.publisher.version,
                  drivers=len(self.drivers), devices=len(self.config.devices),
                  rules=len(self.rules), next_seq=outbox.next_seq, backlog=outbox.depth)
        await self.uplink.start()
        if self.config.metrics.port is not None:
            # Sources read at each scrape: a remote configuration may restart drivers.
            state = GatewayState(self.gateway, self._counters, self._health_sources,
                                 time.monotonic())
            self.metrics = MetricsListener(lambda: gateway_metrics(state), "127.0.0.1",
                                           self.config.metrics.port)
            await self.metrics.start()
        control = PortControlServer(state_dir, self.ports)
        await control.start()
        for group in self.groups.values():
            self._start_group(group)
        tasks = [asyncio.create_task(self._flush_loop(), name="telemetry flush"),
                 asyncio.create_task(self._health_loop(health), name="health")]
        watchdog_s = watchdog_interval_s()
        if watchdog_s is not None:
            tasks.append(asyncio.create_task(watchdog_loop(watchdog_s), name="watchdog"))
        notify("READY=1")
        try:
            await stop.wait()
        finally:
            notify("STOPPING=1")
            log_event(log, "agent_stopping", gateway=self.gateway)
            await control.stop()
            await cancel_and_wait(tasks)
            for group in self.groups.values():
                await self._stop_group(group)
            if self.metrics is not None:
                await self.metrics.stop()
            self._flush()
            await self.uplink.stop(DRAIN_TIMEOUT_S)
            counters = self._counters()
            outbox.close()
            log_event(log, "agent_stopped", gateway=self.gateway, **counters)

    async def _supervise(self, name: str, run: Callable[[], Awaitable[None]]) -> None:
        """A driver that crashes is logged and restarted with backoff, never the agent."""
        failures = 0
        while True:
            try:
                await run()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                self.counters["driver_restarts"] += 1
                delay = backoff_delay(failures - 1, 1.0, DRIVER_RESTART_CAP_S)
                log_event(log, "driver_crashed", logging.ERROR, exc_info=exc, driver=name,
                          error=repr(exc), restart_in_s=round(delay, 1))
                await asyncio.sleep(delay)

    def _on_reading(self, reading: Reading, report: bool) -> None:
        self.counters["readings"] += 1
        for rule in self.rules:
            try:
                events = rule.feed(reading)
            except Exception as exc:  # a rule bug must not lose the reading or stop the driver
                self.counters["rule_errors"] += 1
                log_event(log, "rule_failed", logging.ERROR, point=reading.point,
                          rule=type(rule).__name__, error=repr(exc))
                continue
            for event in events:
                self._raise(event)
        if report:
            self.counters["reported"] += 1
            self._pending.append(reading)
            if len(self._pending) >= TELEMETRY_MAX_BATCH:
                self._flush()

    def _raise(self, event: IncidentEvent, snapshot: bytes | None = None) -> str:
        assert self.publisher is not None
        key = (event.point, event.type)
        details = dict(event.details)
        if event.state is AlarmState.CLEARED and key in self._active:
            details["active_event"] = self._active.pop(key)
        message = self.publisher.incident(event, details, has_snapshot=snapshot is not None)
        if snapshot is not None:  # same lane and durability as its incident, right after it
            self.publisher.snapshot(message.event_id, snapshot)
        if event.state is AlarmState.ACTIVE:
            self._active[key] = message.event_id
        self.counters["incidents"] += 1
        log_event(log, "incident", logging.WARNING, point=event.point, event_id=message.event_id,
                  seq=message.seq, type=event.type, state=event.state.value,
                  severity=event.severity.value, value=event.value, message=event.message,
                  snapshot_bytes=len(snapshot) if snapshot is not None else None)
        return message.event_id

    def _on_downlink(self, message: Command | ConfigUpdate) -> None:
        """Server -> gateway; every command gets a cmd/result (through the outbox)."""
        assert self.publisher is not None
        log_event(log, "downlink", event_id=message.id, kind=message.kind.value,
                  name=getattr(message, "name", None))
        # The retained config carries one section per concern: each handler reads its own.
        handlers = [h for h in self.downlink_handlers if h.wants(message)]
        if isinstance(message, Command):
            handlers = handlers[:1]
        for handler in handlers:
            reply = handler.handle(message)
            if reply is not None:
                self.reply(reply)
        if not handlers and isinstance(message, Command):
            self.publisher.command_result(message.id, False, None,
                                          f"unknown command {message.name!r}")

    def reply(self, reply: CommandReply) -> None:
        assert self.publisher is not None
        self.publisher.command_result(reply.command_id, reply.ok, reply.result, reply.error)

    # ---- remote configuration (the applier's Runtime) ----

    async def reconfigure(self, new: GatewayConfig, plan: ChangePlan) -> None:
        self.config = new
        for type_name in sorted(plan.driver_types):
            old = self.groups.pop(type_name, None)
            if old is not None:
                await self._stop_group(old)
            if type_name in _device_types(new):
                self._start_group(self._make_group(type_name))
        if plan.rules:
            self.rules = [RULES.get(rule.type).factory(rule) for rule in new.rules]
        if plan.uplink and self.uplink is not None and self.outbox is not None:
            # The outbox stays: what the old connection had not delivered goes by the new one.
            await self.uplink.stop(DRAIN_TIMEOUT_S)
            self.uplink = self._new_uplink(new, self.outbox)
            await self.uplink.start()
        if self._health is not None:
            self._health.set_sources(self._health_sources())

    async def probe_broker(self, new: GatewayConfig) -> str | None:
        mqtt = new.mqtt
        password = (mqtt.password_file.read_text(encoding="utf-8").strip()
                    if mqtt.password_file is not None else None)
        tls = mqtt.tls.context() if mqtt.tls else None
        result = await asyncio.to_thread(probe_broker, mqtt.host, mqtt.port, self.gateway,
                                         password, tls, BROKER_PROBE_S, mqtt.protocol)
        return None if result.outcome is ProbeOutcome.OK else (
            f"{result.outcome.value}: {result.detail}")

    def published(self) -> int:
        return self.uplink.counters["published"] if self.uplink is not None else 0

    def health_problems(self, driver_types: frozenset[str], published_before: int) -> list[str]:
        problems = []
        for type_name in sorted(driver_types & self.groups.keys()):
            for driver in self.groups[type_name].drivers:
                health = driver.health()
                if health.state is not DriverState.OK:
                    failing = [f"{k}: {v}" for k, v in health.devices.items() if v != "ok"]
                    problems.append(f"{driver.name}: {health.state.value} ("
                                    + ", ".join([*([health.detail] if health.detail else []),
                                                 *failing])[:300] + ")")
        if self.uplink is None or not self.uplink.connected:
            problems.append(f"broker {self.config.mqtt.host}:{self.config.mqtt.port} "
                            "not connected")
        elif self.outbox is not None and self.outbox.depth and (
                self.published() <= published_before):
            problems.append(f"outbox not draining ({self.outbox.depth} waiting)")
        return problems

    def _record_access(self, record: AccessRecord) -> str:
        """An access event into the outbox; ``offline`` says the uplink was down at the time."""
        assert self.publisher is not None
        offline = self.uplink is None or not self.uplink.connected
        message = self.publisher.access(record, offline)
        self.counters["access_events"] += 1
        log_event(log, "access_event", point=record.point, door=record.door,
                  event_id=message.event_id, seq=message.seq, result=record.result.value,
                  credential=record.credential, card=record.card, reason=record.reason,
                  pass_id=record.pass_id)
        return message.event_id

    def _flush(self) -> None:
        if not self._pending or self.publisher is None:
            return
        batch, self._pending = self._pending, []
        self.publisher.telemetry(batch)
        self.counters["telemetry_messages"] += 1

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(TELEMETRY_FLUSH_S)
            self._flush()

    async def _health_loop(self, health: HealthReporter) -> None:
        assert self.publisher is not None
        await asyncio.sleep(min(STARTUP_SETTLE_S, self.config.health.interval_s))
        release_free_heap()  # start-up garbage, so the steady state is what stays resident
        while True:
            await asyncio.sleep(self.config.health.interval_s)
            snapshot = health.snapshot()
            message = self.publisher.health(snapshot)
            log_event(log, "health", seq=message.seq, rss_bytes=snapshot.memory_rss_bytes,
                      cpu_percent=snapshot.cpu_percent,
                      drivers=",".join(f"{k}:{v.state.value}" for k, v in snapshot.drivers.items()))

    def _counters(self) -> dict[str, int]:
        out = dict(self.counters)
        if self.applier is not None:
            out.update({f"remote_config_{k}": v for k, v in self.applier.counters.items()})
        if self.outbox is not None:
            stats = self.outbox.stats()
            out.update({f"outbox_{k}": v for k, v in stats.items()})
            out["dropped"] = stats.get("dropped", 0)
        if self.uplink is not None:
            out.update({f"mqtt_{k}": v for k, v in self.uplink.counters.items()})
            out["mqtt_connected"] = int(self.uplink.connected)
            out["mqtt_inflight"] = self.uplink.inflight
            out.update({f"mqtt_{k}": v for k, v in self.uplink.end_to_end.counters.items()})
            out["mqtt_unconfirmed"] = len(self.uplink.end_to_end.confirmations)
            out["mqtt_window"] = self.uplink.window
            out["published"] = self.uplink.counters["published"]
        return out


def _device_types(config: GatewayConfig) -> list[str]:
    return list(dict.fromkeys(device.type for device in config.devices))


def _file_hash(config: GatewayConfig) -> str:
    """The hash of the local file's document: what the gateway runs before any push."""
    if config.source is None:
        return ""
    try:
        document = yaml.safe_load(config.source.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return ""
    return config_hash(document) if isinstance(document, dict) else ""
