"""A gridsense server as a real process (so a test can kill -9 it), its config and checker CLI."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path
from typing import Any

from gridsense_devtools.community import registry_yaml
from gridsense_devtools.http import health as read_health
from gridsense_devtools.ports import free_port
from gridsense_devtools.processes import (
    BIN,
    Proc,
    Procs,
    env_without_proxies,
    spawn,
    stop_process,
    wait_until,
)
from gridsense_devtools.server_config import local_url_of

SERVER = BIN / "gridsense-server"


class ServerProcess:
    """``gridsense-server run --config ...``; every start appends to one log file."""

    def __init__(self, config: Path, http_port: int, log_path: Path) -> None:
        self.config = config
        self.url = f"http://127.0.0.1:{http_port}"
        # /healthz with the counters: on the local-only port (in public only the status).
        self.details_url = local_url_of(config) or self.url
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, *, wait_mqtt: bool = True) -> ServerProcess:
        self.proc = spawn([str(SERVER), "run", "--config", str(self.config)], self.log_path)
        wait_until(lambda: self.health() is not None or not self.alive(), 60, "server /healthz")
        assert self.alive(), self.log()
        if wait_mqtt:
            wait_until(lambda: (self.health() or {}).get("mqtt.connected"), 30, "MQTT connected")
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def health(self) -> dict[str, Any] | None:
        """/healthz with every gauge and counter (read on the local-only port)."""
        return read_health(self.details_url)

    def counter(self, name: str) -> int:
        return int((self.health() or {}).get(name, 0))

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> int | None:
        return None if self.proc is None else stop_process(self.proc, timeout=60)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]


def run_check(config: Path, *args: str) -> tuple[int, Any, str]:
    """``gridsense-server check --json``: (exit code, parsed report or None, stderr)."""
    result = subprocess.run([str(SERVER), "check", "--config", str(config), "--json", *args],
                            capture_output=True, text=True, timeout=120,
                            env=env_without_proxies(), check=False)
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        report = None
    return result.returncode, report, result.stderr


def write_registry_and_config(
    tmp: Path,
    mqtt_port: int,
    influx_url: str,
    database: str,
    points: dict[str, tuple[str, str]],
    mqtt_tls: str | None = None,
    http_tls: str | None = None,
) -> tuple[Path, str]:
    """Registry and config for a server on a free port; returns the config path and base URL.
    ``mqtt_tls``: the ``mqtt.tls`` mapping in YAML flow style, e.g. ``{ca_file: ca.crt}``;
    ``http_tls`` the same for ``http.tls`` (the base URL is then https://127.0.0.1:port)."""
    http_port = free_port()
    https = f", tls: {http_tls}" if http_tls else ""
    tls = f",\n       tls: {mqtt_tls}" if mqtt_tls else ""
    (tmp / "registry.yaml").write_text(registry_yaml(points), encoding="utf-8")
    config = tmp / "server.yaml"
    config.write_text(f"""
mqtt: {{host: 127.0.0.1, port: {mqtt_port}, client_id: server-{http_port},
       share_group: gridsense-server{tls}}}
influxdb: {{url: "{influx_url}", database: {database}, batch_size: 1000, flush_interval_s: 0.5}}
database: {{url: "sqlite:///{tmp / "server.db"}"}}
registry: {{file: {tmp / "registry.yaml"}}}
http: {{host: 127.0.0.1, port: {http_port}, local_port: {free_port()}{https}}}
""")
    return config, f"{'https' if http_tls else 'http'}://127.0.0.1:{http_port}"


def launch_server(procs: Procs, config: Path, base: str) -> Proc:
    """Start ``gridsense-server run`` and wait until it answers /healthz."""
    server = procs.start("server", "gridsense-server", "run", "--config", str(config))
    wait_until(
        lambda: read_health(base) or not server.alive(), 60, "server /healthz"
    )
    assert server.alive(), procs.logs()
    return server


def start_server(
    procs: Procs,
    tmp: Path,
    mqtt_port: int,
    influx_url: str,
    database: str,
    points: dict[str, tuple[str, str]],
    mqtt_tls: str | None = None,
) -> tuple[Proc, str, Path]:
    """Write config and start a server; returns the process, its base URL and config path."""
    config, base = write_registry_and_config(tmp, mqtt_port, influx_url, database, points,
                                             mqtt_tls)
    return launch_server(procs, config, base), base, config
