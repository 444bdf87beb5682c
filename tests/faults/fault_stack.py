"""The whole system as real processes, with handles to break each part of it.

Broker (persistent, restartable on its port), InfluxDB, server, a Modbus simulator with a steady
stream of readings and a sensor that overheats every cycle, and the edge agent — optionally
behind a proxy that cuts its uplink. Used by the fault tests in this folder.
"""

from __future__ import annotations

import json
import re
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from websockets.sync.client import connect

from gridsense_devtools.http import health as read_health
from gridsense_devtools.http import login, try_http_json
from gridsense_devtools.ports import free_port
from gridsense_devtools.processes import Proc, Procs, wait_until
from gridsense_devtools.server_process import launch_server, write_registry_and_config
from gridsense_devtools.server_process import run_check as check_cli
from gridsense_devtools.services import InfluxDB, Mosquitto

GATEWAY = "gw-f"
POINTS = ("gw-f.t1", "gw-f.t2", "gw-f.hot")  # points_of(GATEWAY)
POINT_GRIDS = {point: (GATEWAY, "g01-a") for point in POINTS}
BROKER_LIMITS = [
    "max_queued_messages 200000",
    "max_inflight_messages 100",
    "message_size_limit 2097152",
    "persistent_client_expiration 7d",
]

# Noise above the edge's deadband makes every poll a report: a steady, countable stream.
# The third sensor overheats once a minute, so incidents keep coming during every fault.
SCENARIO = """
sensors:
  - {slave: 1, profile: xy-md02, values: {temperature: 20.0, humidity: 50.0}, noise: 0.5}
  - {slave: 2, profile: xy-md02, values: {temperature: 30.0, humidity: 50.0}, noise: 0.5}
  - slave: 3
    profile: xy-md02
    values: {temperature: 25.0, humidity: 50.0}
    noise: 0.5
    script:
      - {at: 5, metric: temperature, ramp_to: 75, over_s: 3}
      - {at: 20, metric: temperature, ramp_to: 25, over_s: 3}
    loop_s: 45
"""


def points_of(gateway: str) -> tuple[str, ...]:
    return tuple(f"{gateway}.{name}" for name in ("t1", "t2", "hot"))


def gateway_yaml(link: Path, mqtt_port: int, state: Path, gateway: str = GATEWAY,
                 mqtt_extra: str = "") -> str:
    """``mqtt_extra``: more keys of the ``mqtt`` mapping, e.g. ``, protocol: "3.1.1"``."""
    devices = "\n".join(
        f"  - {{type: modbus_temperature, point: {point}, bus: rs485-0, slave: {slave}, "
        f"profile: xy-md02, poll_interval_s: 0.5, report_deadband: 0.1, refresh_interval_s: 2}}"
        for slave, point in enumerate(points_of(gateway), start=1)
    )
    return f"""
gateway: {{id: {gateway}, state_dir: {state}}}
mqtt: {{host: 127.0.0.1, port: {mqtt_port}, keepalive_s: 5, reconnect_max_s: 5{mqtt_extra}}}
health: {{interval_s: 2}}
buses:
  - {{id: rs485-0, port: {link}, timeout_s: 0.3}}
devices:
{devices}
rules:
  - {{type: over_temperature, points: ["{gateway}.hot"], threshold: 60, hysteresis: 5,
     min_duration_s: 1, severity: major}}
"""


class StreamRecorder:
    """A worker's live stream, reconnecting across server restarts; keeps every message."""

    def __init__(self, base_ws: str, base_http: str, username: str) -> None:
        self.messages: list[dict[str, Any]] = []
        self._base_ws, self._base_http, self._user = base_ws, base_http, username
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                token = login(self._base_http, self._user)
                with connect(f"{self._base_ws}/api/v1/stream?token={token}", open_timeout=5) as ws:
                    while not self._stop.is_set():
                        try:
                            raw = ws.recv(timeout=0.5)
                        except TimeoutError:
                            continue
                        self.messages.append(json.loads(raw))
            except Exception:  # server down or restarting: try again shortly
                time.sleep(0.5)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def pages(self) -> list[tuple[str, str]]:
        """(incident id, event) for every incident message received."""
        return [
            (m["incident"]["id"], m.get("event", ""))
            for m in self.messages
            if m.get("type") == "incident"
        ]


class Stack:
    def __init__(self, tmp: Path, uplink_port: int | None = None, shared: bool = False,
                 workers: int = 1, db_url: str | None = None) -> None:
        self.tmp = tmp
        self.shared = shared  # the server subscribes through MQTT 5 shared subscriptions
        # Several server processes on one PostgreSQL database (``db_url``), one share group.
        self.workers = workers
        self.db_url = db_url
        self.servers: list[Proc | None] = [None] * workers
        self.worker_configs: list[Path] = []
        self.worker_bases: list[str] = []
        self.procs = Procs(tmp)
        self.broker = Mosquitto(
            tmp / "mosquitto", free_port(), persistence=True, extra_config=BROKER_LIMITS
        )
        self.influx = InfluxDB(tmp / "influx", free_port())
        self.database = "gridsense"
        self.base = ""
        self.link = tmp / "ttyRS485"
        self.server_config = tmp / "server.yaml"  # written by start()
        self.gateway_config = tmp / "gateway.yaml"
        self.uplink_port = uplink_port
        self.started_at = datetime.now(UTC)
        self.server: Proc | None = None
        self.edge: Proc | None = None
        self.simulator: Proc | None = None
        self.stream: StreamRecorder | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> Stack:
        (self.tmp / "scenario.yaml").write_text(SCENARIO)
        self.broker.start()
        self.influx.start()
        self.server_config, self.base = write_registry_and_config(
            self.tmp, self.broker.port, self.influx.url, self.database, POINT_GRIDS
        )
        if self.shared:
            text = self.server_config.read_text()
            self.server_config.write_text(text.replace(
                "share_group: gridsense-server", "share_group: gridsense-server, shared: true"))
        self.worker_configs, self.worker_bases = [self.server_config], [self.base]
        if self.db_url is not None:
            self.worker_configs, self.worker_bases = self._worker_configs(self.db_url)
        self.gateway_config.write_text(
            gateway_yaml(self.link, self.uplink_port or self.broker.port, self.tmp / "edge-state")
        )
        for index in range(self.workers):
            self.start_server(index)
        # With several workers the phone is on the last one: incidents another took from the
        # share group reach it through the database.
        last = self.worker_bases[-1]
        self.stream = StreamRecorder(last.replace("http://", "ws://"), last, "worker-g01")
        self.simulator = self.procs.start(
            "simulator",
            "gridsense-edge",
            "simulate",
            "modbus",
            "--scenario",
            str(self.tmp / "scenario.yaml"),
            "--link",
            str(self.link),
        )
        wait_until(self.link.exists, 30, "the simulator's pty link")
        self.start_edge()
        return self

    def start_server(self, index: int = 0) -> None:
        if index == 0:
            self.server = launch_server(self.procs, self.server_config, self.base)
            self.servers[0] = self.server
            return
        config, base = self.worker_configs[index], self.worker_bases[index]
        server = self.procs.start(f"server-{index}", "gridsense-server", "run", "--config",
                                  str(config))
        wait_until(lambda: read_health(base) or not server.alive(), 60, f"server {index}")
        assert server.alive(), self.procs.logs()
        self.servers[index] = server

    def _worker_configs(self, db_url: str) -> tuple[list[Path], list[str]]:
        """The first config moved to ``db_url``, and one more per worker: its own client id
        and ports, the same database, share group and token secret."""
        base = yaml.safe_load(self.server_config.read_text())
        base["database"] = {"url": db_url}
        base["mqtt"]["shared"] = True
        base["auth"] = {"secret_file": str(self.tmp / "token.secret")}
        configs, bases = [], []
        for index in range(self.workers):
            config = json.loads(json.dumps(base))
            if index:
                config["mqtt"]["client_id"] = f"{base['mqtt']['client_id']}-{index}"
                config["http"].update(port=free_port(), local_port=free_port())
                config["influxdb"]["spool_dir"] = str(self.tmp / f"spool-{index}")  # its own
            path = self.server_config if index == 0 else self.tmp / f"server-{index}.yaml"
            path.write_text(yaml.safe_dump(config, allow_unicode=True))
            configs.append(path)
            bases.append(f"http://127.0.0.1:{config['http']['port']}")
        return configs, bases

    def start_edge(self) -> None:
        self.edge = self.procs.start(
            "edge", "gridsense-edge", "run", "--config", str(self.gateway_config)
        )

    def stop(self) -> None:
        if self.stream is not None:
            self.stream.close()
        self.procs.stop_all()
        self.influx.resume()
        self.influx.stop()
        self.broker.resume()
        self.broker.stop()

    def dead(self) -> list[str]:
        """The current server, edge and simulator processes that are not running."""
        current = {"server": self.server, "edge": self.edge, "simulator": self.simulator,
                   **{f"server-{i}": proc for i, proc in enumerate(self.servers) if i}}
        return [name for name, proc in current.items() if proc is not None and not proc.alive()]

    # -- observations ----------------------------------------------------------------------
    def readings(self, point: str) -> int:
        rows = self.influx.points(
            f'SELECT count("value") FROM "temperature" WHERE "point" = \'{point}\'', self.database
        )
        return int(rows[0]["count"]) if rows else 0

    def flowing(self, min_readings: int = 10) -> bool:
        return all(self.readings(p) >= min_readings for p in POINTS)

    def check(self, max_gap_s: float) -> tuple[int, dict[str, Any]]:
        """The project's own checker: sequence gaps, series gaps, duplicate incidents."""
        return run_check(self.server_config, GATEWAY, self.started_at, max_gap_s)

    def _edge_log(self) -> str:
        return (self.tmp / "edge.log").read_text(errors="replace")

    def latest_health_seq(self) -> int | None:
        """The sequence number of the newest health message the gateway logged."""
        return latest_health_seq(self._edge_log())

    def incident_event_ids_sent(self, upto_seq: int) -> set[str]:
        return incident_event_ids_sent(self._edge_log(), upto_seq)

    def incident_event_ids_stored(self) -> set[str]:
        return incident_event_ids_stored(self.base)


def run_check(config: Path, gateway: str, since: datetime,
              max_gap_s: float) -> tuple[int, dict[str, Any]]:
    """``gridsense-server check`` for one gateway: its exit code and its JSON report."""
    code, report, stderr = check_cli(config, "--gateway", gateway, "--since", since.isoformat(),
                                     "--max-gap", str(max_gap_s))
    return code, report if report is not None else {"stderr": stderr}


def latest_health_seq(edge_log: str) -> int | None:
    found = re.findall(r"event=health gateway=\S+ seq=(\d+)", edge_log)
    return int(found[-1]) if found else None


def incident_event_ids_sent(edge_log: str, upto_seq: int) -> set[str]:
    """Ground truth from the edge's own log (all its runs): the incident events it raised
    with a sequence number up to ``upto_seq``."""
    pattern = r"event=incident .*?event_id=(\w+) seq=(\d+)"
    return {event for event, seq in re.findall(pattern, edge_log) if int(seq) <= upto_seq}


def incident_event_ids_stored(base: str) -> set[str]:
    token = login(base, "control")
    ids: set[str] = set()
    for incident in try_http_json("GET", f"{base}/api/v1/incidents", token) or []:
        full = try_http_json("GET", f"{base}/api/v1/incidents/{incident['id']}", token)
        ids.update(full.get("event_ids", []))
    return ids
