"""Wire the server together and run it in ONE asyncio loop: ingest, writer, incidents, HTTP.

Start-up order: migrations, registry, point directory, writer, dispatcher, MQTT, HTTP. It never
waits for MQTT or InfluxDB: both reconnect in the background, so the server starts (and serves
the API) while either is down. Stop order is the reverse, so every message MQTT already
acknowledged is handled and the InfluxDB writer is flushed before the process exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import uvicorn

from . import __version__
from .api import ApiContext, TokenSigner, create_app, load_or_create_secret
from .config import ServerConfig
from .counters import Counters
from .db import make_engine, make_session_factory, upgrade
from .db.engine import display_url
from .directory import PointDirectory
from .gateways import GatewayService
from .incidents import IncidentService
from .influx_writer import InfluxWriter
from .ingest import Dispatcher, Handoff, MqttConsumer
from .live import LiveHub
from .logs import kv
from .registry import load_registry_file
from .registry_store import apply_registry

log = logging.getLogger(__name__)

HANDOFF_CAPACITY = 10_000  # decoded messages between paho's thread and the loop
DIRECTORY_REFRESH_S = 60.0  # pick up a registry another process loaded
GATEWAY_SEEN_FLUSH_S = 5.0


class _EmbeddedUvicorn(uvicorn.Server):
    """uvicorn without its own signal handling: this process decides when to stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class ServerApp:
    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.counters = Counters()
        self.engine = make_engine(config.database.url)
        self.factory = make_session_factory(self.engine)
        self.directory = PointDirectory()
        self.hub = LiveHub(self.counters)
        self.writer = InfluxWriter(config.influxdb, self.directory, self.counters)
        self.incidents = IncidentService(self.factory, self.hub, self.counters)
        self.gateways = GatewayService(self.factory, self.counters)
        self.consumer: MqttConsumer | None = None
        self.handoff: Handoff[Any] | None = None
        self.http_url: str | None = None
        self.ready = asyncio.Event()

    # -- pieces also used by the CLI -------------------------------------------------------------

    def migrate(self) -> None:
        upgrade(self.engine)

    def load_registry(self, path: Path) -> dict[str, int]:
        stats = apply_registry(self.factory, load_registry_file(path))
        self.directory.reload(self.factory)
        self.writer.formatter.forget_prefixes()
        return stats

    def gauges(self) -> dict[str, Any]:
        return {
            "version": __version__,
            "mqtt.connected": bool(self.consumer and self.consumer.connected.is_set()),
            "ingest.handoff_size": len(self.handoff) if self.handoff is not None else 0,
            "influx.buffered_lines": self.writer.buffer.lines,
            "live.subscribers": self.hub.subscribers,
            "registry.points": len(self.directory),
        }

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
        signer = TokenSigner(await asyncio.to_thread(load_or_create_secret, secret_file),
                             config.auth.token_ttl_s)
        api = create_app(ApiContext(self.factory, signer, self.hub, self.counters, self.gauges))

        self.handoff = Handoff(HANDOFF_CAPACITY, asyncio.get_running_loop())
        self.consumer = MqttConsumer(config.mqtt, self.handoff, self.counters)
        dispatcher = Dispatcher(self.handoff, self.writer, self.incidents, self.gateways,
                                self.counters)
        await self.writer.start()
        dispatcher.start()
        self.consumer.start()
        background = [
            asyncio.create_task(self.gateways.run_flusher(GATEWAY_SEEN_FLUSH_S)),
            asyncio.create_task(self._refresh_directory()),
        ]
        http = _EmbeddedUvicorn(uvicorn.Config(
            api, host=config.http.host, port=config.http.port, log_config=None,
            access_log=False, lifespan="off",
        ))
        serving = asyncio.create_task(_serve_http(http), name="http")
        try:
            await self._announce(http, serving)
            stopping = asyncio.create_task(stop.wait())
            await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
        finally:
            log.info(kv("server_stopping"))
            http.should_exit = True
            with contextlib.suppress(Exception):
                await serving
            await asyncio.to_thread(self.consumer.stop)
            await dispatcher.drain_and_stop()
            for task in background:
                task.cancel()
            with contextlib.suppress(Exception):
                await self.gateways.flush_seen()
            await self.writer.stop(flush_timeout=10.0)
            self.engine.dispose()
            log.info(kv("server_stopped", **{k.replace(".", "_"): v for k, v in
                                             self.counters.snapshot().items()
                                             if k.startswith(("ingest.", "influx."))}))

    async def _announce(self, http: uvicorn.Server, serving: asyncio.Task[None]) -> None:
        while not http.started:
            if serving.done():
                raise RuntimeError(
                    f"HTTP server did not start on {self.config.http.host}:"
                    f"{self.config.http.port} (is the port in use? {serving.exception()})"
                )
            await asyncio.sleep(0.05)
        port = http.servers[0].sockets[0].getsockname()[1]
        self.http_url = f"http://{self.config.http.host}:{port}"
        log.info(kv("http_listening", url=self.http_url, openapi=f"{self.http_url}/openapi.json"))
        self.ready.set()

    async def _refresh_directory(self) -> None:
        while True:
            await asyncio.sleep(DIRECTORY_REFRESH_S)
            try:
                before = len(self.directory)
                await asyncio.to_thread(self.directory.reload, self.factory)
                self.writer.formatter.forget_prefixes()
                if len(self.directory) != before:
                    log.info(kv("registry_points_refreshed", points=len(self.directory)))
            except Exception:
                log.exception(kv("registry_refresh_failed"))


async def _serve_http(http: uvicorn.Server) -> None:
    try:
        await http.serve()
    except SystemExit as exc:
        # uvicorn exits the process when it cannot bind; here that is an ordinary error, so
        # the rest of the server shuts down in order and the CLI reports it.
        raise RuntimeError(f"uvicorn stopped with exit code {exc.code}") from None

