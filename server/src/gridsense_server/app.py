"""Wire the server together and run it in one asyncio loop: ingest, writer, incidents, HTTP.

It starts without waiting for MQTT or InfluxDB (both reconnect in the background); the MQTT
sessions and the stopping order are described in docs/architecture.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import uvicorn

from gridsense_protocol import CommandResult as CommandResultMessage
from gridsense_protocol import utc_now

from . import __version__
from .access_control.correlate import CardCorrelator
from .access_control.log import AccessLogService
from .access_control.sync import CredentialSync
from .acks import AckLedger
from .api import ApiContext, TokenSigner, create_app, load_or_create_secret
from .api.checkin_routes import CHECKIN_SCOPE, CheckinParts
from .api.context import Health
from .api.enrollment_routes import make_enrollment
from .api.hardening import BodyLimits, Hardening
from .api.health_routes import local_only
from .api.incident_routes import IncidentActionContext
from .api.photo_routes import FORM_OVERHEAD
from .api.web_setup import make_web_auth, run_upkeep
from .audit import CLI_ADDRESS, SYSTEM, RefusalSink
from .audit.retention import run_retention
from .auth.throttle import Throttle
from .cluster import (
    AUDIT_RETENTION,
    AUTH_UPKEEP,
    COMMISSIONING,
    CONFIG_PUSH,
    CREDENTIAL_RESYNC,
    DEAD_LETTER_REPLAY,
    PASS_RECONCILE,
    Cluster,
)
from .commissioning import Commissioning
from .config import ServerConfig
from .counters import Counters
from .db import make_engine, make_session_factory, upgrade
from .db.dead_letters import DeadLetterStore
from .db.engine import display_url
from .db.sequences import SequenceStore
from .db.unassigned import UnassignedStore
from .escalation.scheduler import EscalationScheduler
from .gateways.status import GatewayService
from .ingest.authority import GatewayAuthority
from .ingest.command_results import CommandResultService
from .ingest.dead_letters import DeadLetterSink
from .ingest.handoff import Handoff
from .ingest.router import Router, Services, Source
from .ingest.settle import Settler
from .ingest.settled_acks import SettledAcks
from .ingest.sources import IngestSource, make_sources
from .ingest.unassigned import UnassignedPoints
from .listeners import (
    CA_DOWNLOAD_PATH,
    RedirectToHttps,
    ca_download,
    start_listener,
    tls_files,
    uvicorn_config,
)
from .live.hub import LiveHub
from .logs import kv
from .metrics import MetricSources, load_metrics_token, make_registry, render
from .notify.channel_check import CheckResult, send_test
from .notify.links import LinkSigner
from .notify.sender import NotificationSender
from .onsite.labels import LabelSigner
from .onsite.photo_store import PhotoStore
from .passes import records as pass_records
from .passes.service import PassService
from .registry.directory import PointDirectory
from .registry.import_export import read_any
from .registry.store import apply_registry
from .remote_config.push import ConfigPusher
from .secure_files import FileProblem, check_private, prepare_database_file
from .timeseries.backends import series_reader
from .timeseries.spool import DiskSpool
from .timeseries.writer import InfluxWriter
from .workorders.incidents import IncidentService
from .workorders.snapshots import SnapshotStore

log = logging.getLogger(__name__)

DIRECTORY_REFRESH_S = 60.0  # read the registry again even if its version did not move
REGISTRY_POLL_S = 2.0  # how soon a registry another process loaded (the CLI) applies here
GATEWAY_SEEN_FLUSH_S = 5.0
STOP_DRAIN_S = 10.0
MIN_SECRET_BYTES = 16  # what the token signer needs (HMAC-SHA256 key)


# After a dead letter, /healthz says "degraded" this long.
DEGRADED_FOR_S = 600.0


class ServerApp:
    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.counters = Counters()
        prepare_database_file(config.database.url)  # 0600 before SQLite makes it 0644
        self.engine = make_engine(config.database.url)
        self.factory = make_session_factory(self.engine)
        self.directory = PointDirectory()
        self.hub = LiveHub(self.counters)
        self.spool: DiskSpool | None = None  # opened by run(): the CLI's other verbs need none
        self.snapshots: SnapshotStore | None = None  # opened by run() as well
        self.writer = InfluxWriter(config.influxdb, self.directory, self.counters,
                                   seal_messages=max(1, config.mqtt.receive_maximum // 4))
        self.incidents = IncidentService(self.factory, self.hub, self.counters,
                                         late_after_s=config.incidents.late_after_s,
                                         lifecycle=config.lifecycle)
        self.notifier = NotificationSender(self.factory, config.lifecycle, self.hub, self.counters)
        self.scheduler: EscalationScheduler | None = None  # needs the secret: made by run()
        # Leases, and on PostgreSQL the live relay and presence: other processes may share
        # the database (gridsense-server run --workers N, or several machines).
        self.cluster = Cluster.wire(config.database.url, self.factory, self.hub, self.notifier,
                                    self.counters)
        self.gateways = GatewayService(self.factory, self.counters, self.hub, config.lifecycle)
        self.access_log = AccessLogService(self.factory, self.counters, self.directory.grid_of)
        self.access_log.correlator = CardCorrelator(self.factory, self.hub, self.counters,
                                                    config.lifecycle, config.access_correlation)
        # Two sessions (MQTT) or consumers (NATS), each with its own in-flight window and acks,
        # so however InfluxDB fares, incidents keep flowing; the events one also publishes.
        self.bridges = make_sources(config, self.counters)
        self.access_sync = CredentialSync(self.factory, self.counters, self.bridges[0])
        self.access_sync.extend = pass_records.with_passes
        self.passes = PassService.of(self.factory, config, self.counters, self.hub)
        self.passes.on_pages = self.notifier.wake
        self.passes.channels = self.notifier.channels
        self.config_pusher = ConfigPusher(self.factory, self.counters, self.bridges[0])
        self.commands = CommandResultService(self.factory, self.counters,
                                             on_result=self._command_result)
        self.sequences = SequenceStore(self.factory)
        self.settler = Settler(self.sequences, self.counters)
        self.dead_letters = DeadLetterStore(self.factory, config.ingest.dead_letters_max)
        self.dead_letter_sink = DeadLetterSink(self.dead_letters, self.counters)
        self.settler.on_refused = self.dead_letter_sink.keep
        self.settled_acks: SettledAcks | None = None
        if config.mqtt.settled_acks:
            events = self.bridges[0]
            self.settled_acks = SettledAcks(
                lambda topic, payload: events.publish(topic, payload), self.counters,
                config.mqtt.settled_ack_interval_s)
            self.settler.on_settled = self.settled_acks.add
        self.unassigned = UnassignedPoints(UnassignedStore(self.factory), self.directory,
                                           self.counters, config.ingest.unassigned_points_max)
        # Security refusals from any wing (cheap, bounded, written in batches).
        self.refusals = RefusalSink(self.factory, self.counters, config.audit.queue_max)
        self.authority = GatewayAuthority(self.directory, self.unassigned, self.counters,
                                          audit=self.refusals.refuse)
        self.ledgers: list[AckLedger] = []
        self.http_url: str | None = None
        self.local_url: str | None = None  # the local-only listener's, when configured
        self.redirect_url: str | None = None  # the plain listener redirecting to HTTPS
        self.ready = asyncio.Event()
        self.reuse_port = False  # one of several worker processes sharing the HTTP ports

    def _command_result(self, message: CommandResultMessage) -> None:
        """Each sender reads only the answers to what it sent (its own result key)."""
        self.access_sync.result_received(message)
        self.config_pusher.result_received(message)

    # -- pieces also used by the CLI -------------------------------------------------------------

    def migrate(self) -> None:
        upgrade(self.engine)

    def load_registry(self, path: Path, actor: str = SYSTEM) -> dict[str, int]:
        stats = apply_registry(self.factory, read_any(path), actor=actor, source=str(path),
                               address=CLI_ADDRESS)
        self.directory.reload(self.factory)
        self.writer.formatter.forget_prefixes()
        return stats

    def mqtt_subscribed(self) -> bool:
        return all(b.subscribed.is_set() for b in self.bridges)

    def gauges(self) -> dict[str, Any]:
        spool = self.spool
        return {
            "version": __version__,
            "mqtt.connected": all(b.connected.is_set() for b in self.bridges),
            "ingest.unacked": sum(len(ledger) for ledger in self.ledgers),
            "influx.buffered_lines": self.writer.buffered_lines,
            "influx.spool_lines": spool.lines if spool is not None else 0,
            "influx.spool_bytes": spool.bytes if spool is not None else 0,
            "live.subscribers": self.hub.subscribers,
            "registry.points": len(self.directory),
        }

    def channel_test(self, who: str, channel: str | None) -> list[CheckResult]:
        return send_test(self.factory, self.notifier.channels, who, channel, utc_now(),
                         ZoneInfo(self.config.lifecycle.timezone))

    def health(self) -> Health:
        """What /healthz says. Down (503) only for what a restart might cure or an operator must
        see at once: ingest stalled, a store unreachable. Dead letters arriving are one bad
        gateway's doing: degraded, still 200, so no supervisor restarts the server for it."""
        down: list[str] = []
        stall_after = self.config.ingest.stall_after_s
        stalled = max((ledger.stalled_s() for ledger in self.ledgers), default=0.0)
        if stalled > stall_after:
            down.append(f"ingest stalled: the oldest unacknowledged message has waited "
                        f"{stalled:.0f} s (limit {stall_after:g} s)")
        try:
            with self.engine.connect() as connection:
                connection.exec_driver_sql("SELECT 1")
        except Exception as exc:
            down.append(f"database {display_url(self.config.database.url)} unreachable: "
                        f"{exc!r}"[:300])
        degraded: list[str] = []
        influx = self.writer.http.unavailable
        if influx is not None:
            # With a spool, readings are durable and acked meanwhile: nothing to restart for.
            (degraded if self.spool is not None else down).append(
                influx + (" (readings go to the spool)" if self.spool is not None else ""))
        if down:
            return Health("down", down)
        arrival = self.dead_letter_sink.last_arrival
        if arrival is not None and time.monotonic() - arrival < DEGRADED_FOR_S:
            degraded.append(f"dead letters arrived in the last {DEGRADED_FOR_S:g} s "
                            f"({self.counters.get('dead_letters.received')} since start; "
                            "see gridsense-server dead-letters list)")
        return Health("degraded", degraded) if degraded else Health("ok", [])

    # -- running ---------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        config = self.config
        log.info(kv("server_starting", database=display_url(config.database.url),
                    mqtt=f"{config.mqtt.host}:{config.mqtt.port}", influxdb=config.influxdb.url))
        await asyncio.to_thread(self.migrate)
        if config.registry.file is not None:
            await asyncio.to_thread(self.load_registry, config.registry.file)
        else:
            await asyncio.to_thread(self.directory.reload, self.factory)
        secret_file = config.auth.secret_file or config.state_dir / "token.secret"
        secret = await asyncio.to_thread(load_token_secret, secret_file)
        signer = TokenSigner(secret, config.auth.token_ttl_s)
        registry = make_registry(MetricSources(self.counters, self.gauges, self.health,
                                               self.factory))
        token_file = config.http.metrics_token_file
        api = create_app(ApiContext(
            self.factory, signer, self.hub, self.counters, self.gauges, health=self.health,
            channel_test=self.channel_test, metrics=lambda: render(registry),
            metrics_token=(await asyncio.to_thread(load_metrics_token, token_file)
                           if token_file is not None else None)))
        self.snapshots = await asyncio.to_thread(
            SnapshotStore, config.snapshot_dir, int(config.snapshots.max_mb * 2**20), self.counters)
        api.state.snapshots = self.snapshots
        api.state.photos = await asyncio.to_thread(PhotoStore, config.photo_dir, config.photos)
        api.state.checkin = CheckinParts(
            LabelSigner(secret), Throttle(self.factory, config.auth.throttle, CHECKIN_SCOPE))
        api.state.access_log = self.access_log
        api.state.access_sync = self.access_sync
        api.state.passes = passes = self.passes
        await asyncio.to_thread(passes.ensure_signing_key)
        api.state.config_pusher = self.config_pusher
        api.state.series_reader = series_reader(self.writer.http)
        api.state.display = config.display
        api.state.plans = config.plans
        api.state.web_auth = web_auth = make_web_auth(self.factory, config, secret, self.refusals)
        # A logout here wakes the person's streams on the other processes too.
        web_auth.watch.relay, self.hub.on_recheck = self.hub.recheck_elsewhere, web_auth.watch.wake
        api.state.enrollment = await asyncio.to_thread(make_enrollment, self.factory, config)
        links = LinkSigner(secret, config.lifecycle.public_url, config.lifecycle.link_ttl_s)
        self.scheduler = EscalationScheduler(self.factory, config.lifecycle, links, self.counters,
                                             hub=self.hub, on_pages=self.notifier.wake)
        loop = asyncio.get_running_loop()
        api.state.commissioning = commissioning = Commissioning(
            self.factory, config.commissioning, config.lifecycle, links,
            api.state.series_reader, self.counters,
            on_pages=lambda: loop.call_soon_threadsafe(self.notifier.wake))
        api.state.incident_actions = IncidentActionContext(
            config.lifecycle, links,
            on_change=lambda: loop.call_soon_threadsafe(self.notifier.wake))

        if config.spool_dir is not None:
            max_bytes = int(config.influxdb.spool_max_mb * 1024 * 1024)
            self.spool = await asyncio.to_thread(DiskSpool, config.spool_dir, max_bytes)
            self.writer.spool = self.spool
        sources = [self._session(bridge) for bridge in self.bridges]
        router = Router(sources, Services(self.writer, self.incidents, self.gateways,
                                          self.commands, snapshots=self.snapshots,
                                          access=self.access_log), self.counters,
                        bounds=config.ingest, authority=self.authority)
        self.dead_letter_sink.replay_into = sources[0].handoff
        await self.writer.start()
        self.dead_letter_sink.start(replay=False)
        await self.unassigned.start()
        self.settler.start()
        if self.settled_acks is not None:
            self.settled_acks.start()
        router.start()
        await self.access_sync.start(watch=False)
        await self.config_pusher.start(poll=False)
        await self.cluster.start()
        cluster = self.cluster
        for bridge, source in zip(self.bridges, sources, strict=True):
            bridge.start(source.handoff)
        background = [
            asyncio.create_task(self.gateways.run_flusher(GATEWAY_SEEN_FLUSH_S)),
            asyncio.create_task(self._refresh_directory()),
            asyncio.create_task(self.scheduler.run(), name="escalation"),
            asyncio.create_task(self.notifier.run(), name="notifier"),
            asyncio.create_task(self.refusals.run(), name="audit-refusals"),
            # One process at a time runs these (leader leases): the others would only repeat
            # the work, or push the same configuration twice.
            cluster.lead(COMMISSIONING, commissioning.run),
            cluster.lead(AUDIT_RETENTION, lambda: run_retention(self.factory, config.audit,
                                                                self.counters)),
            cluster.lead(AUTH_UPKEEP, lambda: run_upkeep(web_auth)),
            cluster.lead(CREDENTIAL_RESYNC, self.access_sync.watch_versions),
            cluster.lead(CONFIG_PUSH, self.config_pusher.run),
            cluster.lead(DEAD_LETTER_REPLAY, self.dead_letter_sink.replay_loop),
            cluster.lead(PASS_RECONCILE, passes.run),
        ]
        listeners: list[tuple[uvicorn.Server, asyncio.Task[None]]] = []
        try:
            await self._listen(api, listeners)
            stopping = asyncio.create_task(stop.wait())
            await asyncio.wait({task for _, task in listeners} | {stopping},
                               return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
        finally:
            log.info(kv("server_stopping"))
            for http, _ in listeners:
                http.should_exit = True
            for _, serving in listeners:
                with contextlib.suppress(Exception):
                    await serving
            await self._stop_ingest(router)
            await self.access_sync.stop()
            await self.config_pusher.stop()
            for task in background:
                task.cancel()
            await self.cluster.stop()
            with contextlib.suppress(Exception):
                await self.gateways.flush_seen()
            if self.spool is not None:
                await asyncio.to_thread(self.spool.close)
            with contextlib.suppress(Exception):  # refusals still queued: recorded, not lost
                await asyncio.to_thread(self.refusals.flush)
            self.engine.dispose()
            log.info(kv("server_stopped", **{k.replace(".", "_"): v for k, v in
                                             self.counters.snapshot().items()
                                             if k.startswith(("ingest.", "influx."))}))

    def _session(self, bridge: IngestSource) -> Source:
        # The hand-off holds a whole window, so paho's thread never waits on the loop.
        handoff: Handoff[Any] = Handoff(self.config.mqtt.receive_maximum,
                                        asyncio.get_running_loop())
        ledger = AckLedger(bridge.ack, lambda: bridge.generation, self.settler.submit)
        ledger.dead_letter = self.dead_letter_sink.add
        self.ledgers.append(ledger)
        return Source(handoff, ledger)

    async def _stop_ingest(self, router: Router) -> None:
        """Stop taking messages, make what was taken durable, ack it, then disconnect."""
        for bridge in self.bridges:
            bridge.pause_reading()
        drained = await router.drain(STOP_DRAIN_S)
        await self.writer.stop(flush_timeout=STOP_DRAIN_S)
        if drained:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(STOP_DRAIN_S):
                    await self.settler.drain()
        await self.settler.stop()
        if self.settled_acks is not None:  # before the bridges stop: they send it
            await self.settled_acks.stop()
        await self.dead_letter_sink.stop()
        await self.unassigned.stop()
        await router.stop()
        for bridge in self.bridges:
            await asyncio.to_thread(bridge.stop)
        log.info(kv("ingest_stopped", unacked=sum(len(ledger) for ledger in self.ledgers)))

    async def _listen(self, api: Any,
                      listeners: list[tuple[uvicorn.Server, asyncio.Task[None]]]) -> None:
        """Start the main listener (HTTPS when configured), then the redirecting and the
        local-only ones; each is appended to ``listeners`` as it starts, to be stopped."""
        http = self.config.http
        tls = await asyncio.to_thread(tls_files, http.tls) if http.tls is not None else None
        ca_pem = tls.ca_file.read_bytes() if tls is not None and tls.ca_file else None
        if ca_pem is not None:
            api.add_api_route(CA_DOWNLOAD_PATH, ca_download(ca_pem), methods=["GET"],
                              include_in_schema=False)
        plans, photos = self.config.plans, self.config.photos
        limits = BodyLimits.for_server(
            http.max_body_kb, http.max_import_mb, plans.max_bytes,
            photos.max_bytes * photos.max_per_incident + FORM_OVERHEAD)
        hardened = Hardening(api, limits, self.counters,
                             img_sources=[plans.tile_origin] if plans.tile_origin else [])
        shared = self.reuse_port
        port = await start_listener(listeners, "http", uvicorn_config(
            hardened, http, host=http.host, port=http.port, tls=tls), reuse_port=shared)
        scheme = "https" if tls is not None else "http"
        self.http_url = f"{scheme}://{http.host}:{port}"
        extra: dict[str, str] = {}
        if tls is not None and http.redirect_port is not None:
            redirect_port = await start_listener(listeners, "http-redirect", uvicorn_config(
                RedirectToHttps(port, ca_pem), http, host=http.host, port=http.redirect_port),
                reuse_port=shared)
            self.redirect_url = f"http://{http.host}:{redirect_port}"
            extra["redirect"] = self.redirect_url
        if http.local_port is not None:
            local_port = await start_listener(listeners, "http-local", uvicorn_config(
                local_only(hardened), http, host="127.0.0.1", port=http.local_port),
                reuse_port=shared)
            self.local_url = f"http://127.0.0.1:{local_port}"
            extra["local"] = self.local_url
        log.info(kv("http_listening", url=self.http_url, openapi=f"{self.http_url}/openapi.json",
                    **extra))
        self.ready.set()

    async def _refresh_directory(self) -> None:
        """Follow the registry: at once when its version moved (a load by another process,
        polled with one tiny read), and every ``DIRECTORY_REFRESH_S`` whatever it says."""
        last_full = time.monotonic()
        # Compared with the database's, not the directory's own: a load in this process
        # reloads the directory at once, and the unassigned list must follow it too.
        followed = self.directory.version
        while True:
            await asyncio.sleep(REGISTRY_POLL_S)
            try:
                due = time.monotonic() - last_full >= DIRECTORY_REFRESH_S
                if not due and await asyncio.to_thread(
                        self.directory.stored_version, self.factory) == followed:
                    continue
                last_full = time.monotonic()
                before = len(self.directory)
                await self.follow_registry()
                followed = self.directory.version
                if len(self.directory) != before or not due:
                    log.info(kv("registry_points_refreshed", points=len(self.directory),
                                version=self.directory.version))
            except Exception:
                log.exception(kv("registry_refresh_failed"))

    async def follow_registry(self) -> None:
        """Take the registry as the database has it now: owners, grids, the unassigned list."""
        await asyncio.to_thread(self.directory.reload, self.factory)
        self.writer.formatter.forget_prefixes()
        await self.unassigned.resync()


def load_token_secret(path: Path) -> bytes:
    """The token secret (created 0600 on first start); refused when others can read it or when
    it is too short, the message naming the file."""
    secret = load_or_create_secret(path)
    check_private(path)
    if len(secret) < MIN_SECRET_BYTES:
        raise FileProblem(f"{path}: the token secret is {len(secret)} bytes; it must be at least "
                          f"{MIN_SECRET_BYTES} (64 hex digits are generated when the file is "
                          "missing: delete it and restart, which signs everyone out)")
    return secret
