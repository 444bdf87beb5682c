"""Run gridsense's own CLIs as real subprocesses for end-to-end and fault tests."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from devservices import env_without_proxies

BIN = Path(sys.executable).parent


def wait_until(
    condition: Callable[[], Any], timeout: float = 30.0, what: str = "", interval: float = 0.05
) -> Any:
    """Poll ``condition`` until it returns something truthy; fail naming ``what``. The one
    poller of the synchronous tests (server_helpers and edge_support re-export it)."""
    deadline = time.monotonic() + timeout
    while True:
        last = condition()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for "
                                 f"{what or condition} (last: {last!r})")
        time.sleep(interval)


class Proc:
    """A gridsense CLI in its own process group, with its output in a log file."""

    def __init__(self, name: str, argv: list[str], log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        with self.log_path.open("ab") as log:
            self.popen = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env_without_proxies(),
                start_new_session=True,
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        if self.alive():
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        return self.popen.returncode

    def kill9(self) -> None:
        self.stop(signal.SIGKILL)


class Procs:
    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.started: list[Proc] = []

    def start(self, name: str, *argv: str) -> Proc:
        proc = Proc(name, [str(BIN / argv[0]), *argv[1:]], self.log_dir)
        self.started.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in reversed(self.started):
            proc.stop()

    def logs(self) -> str:
        return "\n".join(f"----- {p.name} -----\n{p.log()[-4000:]}" for p in self.started)


def http_json(method: str, url: str, token: str | None = None, body: Any = None) -> Any:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=10) as resp:
        return json.loads(resp.read())


def try_http_json(method: str, url: str, token: str | None = None) -> Any:
    with contextlib.suppress(OSError, urllib.error.URLError, ValueError):
        return http_json(method, url, token)
    return None


def login(base: str, username: str, password: str = "demo") -> str:
    reply = http_json(
        "POST", f"{base}/api/v1/auth/token", body={"username": username, "password": password}
    )
    return str(reply["access_token"])


def registry_yaml(points: dict[str, tuple[str, str]]) -> str:
    """The tests' standard community — grids g01 and g02, one micro-grid each (g01-a, g02-a),
    staff control / worker-g01 / worker-g02 (password ``demo``) — with ``points`` as
    ``{point id: (gateway, grid)}``."""
    point_lines = "\n".join(
        f"  - {{id: {point}, gateway: {gateway}, grid: {grid}, name: {point}, location: B1}}"
        for point, (gateway, grid) in points.items()
    )
    return f"""
streets:
  - id: hx
    name: 湖西街道
    communities:
      - id: ly
        name: 莲园社区
        grids:
          - {{id: g01, name: 第一网格, micro_grids: [{{id: g01-a, name: 1号楼}}]}}
          - {{id: g02, name: 第二网格, micro_grids: [{{id: g02-a, name: 8号楼}}]}}
points:
{point_lines}
staff:
  - {{username: control, name: 指挥室, role: control, grids: [], password: demo}}
  - {{username: worker-g01, name: 张伟, role: worker, grids: [g01], password: demo}}
  - {{username: worker-g02, name: 李娜, role: worker, grids: [g02], password: demo}}
"""


def write_server_config(
    tmp: Path,
    mqtt_port: int,
    influx_url: str,
    database: str,
    points: dict[str, tuple[str, str]],
) -> tuple[Path, str]:
    """Registry and config for a server on a free port; returns the config path and base URL."""
    from devservices import free_port

    http_port = free_port()
    (tmp / "registry.yaml").write_text(registry_yaml(points), encoding="utf-8")
    config = tmp / "server.yaml"
    config.write_text(f"""
mqtt: {{host: 127.0.0.1, port: {mqtt_port}, client_id: server-{http_port},
       share_group: gridsense-server}}
influxdb: {{url: "{influx_url}", database: {database}, batch_size: 1000, flush_interval_s: 0.5}}
database: {{url: "sqlite:///{tmp / "server.db"}"}}
registry: {{file: {tmp / "registry.yaml"}}}
http: {{host: 127.0.0.1, port: {http_port}}}
""")
    return config, f"http://127.0.0.1:{http_port}"


def launch_server(procs: Procs, config: Path, base: str) -> Proc:
    """Start ``gridsense-server run`` and wait until it answers /healthz."""
    server = procs.start("server", "gridsense-server", "run", "--config", str(config))
    wait_until(
        lambda: try_http_json("GET", f"{base}/healthz") or not server.alive(), 60, "server /healthz"
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
) -> tuple[Proc, str, Path]:
    """Write config and start a server; returns the process, its base URL and config path."""
    config, base = write_server_config(tmp, mqtt_port, influx_url, database, points)
    return launch_server(procs, config, base), base, config
