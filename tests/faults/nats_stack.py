"""The system on a NATS cluster, as real processes: three nats-server nodes (JetStream, MQTT
3.1.1 on each) behind a TCP balancer, two gateways (the real edge agent, each with its Modbus
simulator) speaking MQTT 3.1.1 through the balancer, two server processes sharing one
PostgreSQL database and one InfluxDB and reading the cluster's JetStream through one durable
consumer per stream. Used by the NATS drill in this folder."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nats
import psycopg
from ulid import ULID

from gridsense_devtools.nats_cluster import NatsCluster
from gridsense_devtools.ports import free_port
from gridsense_devtools.processes import Proc, Procs, wait_until
from gridsense_devtools.server_process import ServerProcess, write_registry_and_config
from gridsense_devtools.services import InfluxDB

from fault_stack import (
    SCENARIO,
    StreamRecorder,
    gateway_yaml,
    incident_event_ids_sent,
    incident_event_ids_stored,
    latest_health_seq,
    points_of,
    run_check,
)
from tcp_proxy import CuttableProxy

GATEWAYS = ("gw-na", "gw-nb")
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
TELEMETRY_STREAM = "GRIDSENSE_TELEMETRY"


@contextlib.contextmanager
def pg_database() -> Iterator[str]:
    """A PostgreSQL database of this drill's own (dropped after); its SQLAlchemy URL."""
    name = f"gs_drill_{str(ULID()).lower()}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class NatsStack:
    def __init__(self, tmp: Path, database_url: str) -> None:
        self.tmp = tmp
        self.database_url = database_url
        self.procs = Procs(tmp)
        self.cluster = NatsCluster(tmp / "nats")
        self.influx = InfluxDB(tmp / "influx", free_port())
        self.database = "gridsense"
        self.balancer = CuttableProxy([node.mqtt_port for node in self.cluster.nodes])
        self.started_at = datetime.now(UTC)
        self.servers: list[ServerProcess] = []
        self.streams: list[StreamRecorder] = []
        self.edges: dict[str, Proc] = {}
        self.simulators: list[Proc] = []

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> NatsStack:
        (self.tmp / "scenario.yaml").write_text(SCENARIO)
        self.cluster.start()
        self.influx.start()
        self.balancer.__enter__()
        grids = {point: (gateway, "g01-a") for gateway in GATEWAYS
                 for point in points_of(gateway)}
        urls = ", ".join(f'"{url}"' for url in self.cluster.urls)
        for index in (1, 2):
            folder = self.tmp / f"server-{index}"
            folder.mkdir()
            config, base = write_registry_and_config(folder, 1883, self.influx.url,
                                                     self.database, grids)
            text = config.read_text().replace(
                f'database: {{url: "sqlite:///{folder / "server.db"}"}}',
                f'database: {{url: "{self.database_url}"}}')
            assert self.database_url in text
            # ack_wait shorter than the default so the drill does not wait long for what the
            # killed server had taken; max_ack_pending as the default.
            config.write_text(text + f"ingest: {{source: nats}}\n"
                                     f"nats: {{urls: [{urls}], ack_wait_s: 10, max_mb: 256}}\n")
            port = int(base.rsplit(":", 1)[1])
            # One after the other: the first makes the schema and the streams.
            server = ServerProcess(config, port, self.tmp / f"server-{index}.log").start()
            self.servers.append(server)
            self.streams.append(StreamRecorder(base.replace("http://", "ws://"), base,
                                               "worker-g01"))
        for gateway in GATEWAYS:
            link = self.tmp / f"tty-{gateway}"
            self.simulators.append(self.procs.start(
                f"simulator-{gateway}", "gridsense-edge", "simulate", "modbus",
                "--scenario", str(self.tmp / "scenario.yaml"), "--link", str(link)))
            wait_until(link.exists, 30, "the simulator's pty link")
            config = self.tmp / f"{gateway}.yaml"
            config.write_text(gateway_yaml(link, self.balancer.port, self.tmp / f"{gateway}-state",
                                           gateway, mqtt_extra=', protocol: "3.1.1"'))
            self.edges[gateway] = self.procs.start(
                f"edge-{gateway}", "gridsense-edge", "run", "--config", str(config))
        return self

    def stop(self) -> None:
        for stream in self.streams:
            stream.close()
        self.procs.stop_all()
        for server in self.servers:
            server.stop()
        with contextlib.suppress(Exception):
            self.balancer.__exit__(None, None, None)
        self.influx.stop()
        self.cluster.stop()

    def dead(self) -> list[str]:
        gone = [proc.name for proc in [*self.edges.values(), *self.simulators]
                if not proc.alive()]
        return gone + [f"server-{i}" for i, s in enumerate(self.servers, 1) if not s.alive()]

    def logs(self) -> str:
        parts = [self.procs.logs()]
        parts += [f"--- server-{i}\n{s.log()}" for i, s in enumerate(self.servers, 1)]
        return "\n".join(parts)

    # -- observations ----------------------------------------------------------------------
    def readings(self, point: str) -> int:
        rows = self.influx.points(
            f'SELECT count("value") FROM "temperature" WHERE "point" = \'{point}\'', self.database
        )
        return int(rows[0]["count"]) if rows else 0

    def flowing(self, min_readings: int = 10) -> bool:
        return all(self.readings(point) >= min_readings
                   for gateway in GATEWAYS for point in points_of(gateway))

    def edge_log(self, gateway: str) -> str:
        return self.edges[gateway].log()

    def latest_health_seq(self, gateway: str) -> int | None:
        return latest_health_seq(self.edge_log(gateway))

    def incident_event_ids_sent(self, gateway: str, upto_seq: int) -> set[str]:
        return incident_event_ids_sent(self.edge_log(gateway), upto_seq)

    def incident_event_ids_stored(self, server: int) -> set[str]:
        return incident_event_ids_stored(self.servers[server].url)

    def check(self, gateway: str, max_gap_s: float, server: int) -> tuple[int, dict[str, Any]]:
        return run_check(self.servers[server].config, gateway, self.started_at, max_gap_s)

    def stream_leader(self, stream: str = TELEMETRY_STREAM) -> int:
        """The index of the node leading ``stream`` (the one whose loss matters most)."""

        async def ask() -> str:
            client = await nats.connect(self.cluster.urls, connect_timeout=2)
            try:
                info = await client.jetstream().stream_info(stream)
                assert info.cluster is not None and info.cluster.leader is not None
                return info.cluster.leader
            finally:
                await client.close()

        leader = asyncio.run(ask())
        return [node.name for node in self.cluster.nodes].index(leader)
