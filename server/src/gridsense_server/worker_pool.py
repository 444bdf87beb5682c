"""``gridsense-server run --workers N``: N server processes on one machine, one database.

The parent prepares what must happen once (migrations, the registry file, the token secret),
reserves the HTTP ports, starts the workers and restarts one that dies (backoff with jitter);
SIGTERM or SIGINT stops them all in order. Each worker is a whole server: its own MQTT client
ids (``<client_id>-w<i>``) in one share group (``mqtt.shared`` on), the HTTP port shared through
SO_REUSEPORT (the kernel spreads connections), its own local-only port (``local_port + i``) and
InfluxDB spool folder (``worker-<i>``). What they share lives in PostgreSQL (cluster.py).
"""

from __future__ import annotations

import ctypes
import logging
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from .app import ServerApp, load_token_secret
from .backoff import Backoff
from .cluster import shared_database
from .config import ConfigError, ServerConfig
from .listeners import shared_socket
from .logs import kv

log = logging.getLogger(__name__)
MAX_WORKERS = 64
STOP_TIMEOUT_S = 60.0
HEALTHY_AFTER_S = 30.0  # a worker that ran this long resets the restart backoff
_PR_SET_PDEATHSIG = 1
EXIT_CONFIG = 2  # the CLI's exit code for a config (or secret file) it refuses


def check_workers(source: Path, config: ServerConfig, workers: int) -> None:
    if not 1 <= workers <= MAX_WORKERS:
        raise ConfigError("--workers", [("workers", None, f"{workers}: 须在 1 到 {MAX_WORKERS} "
                                         f"之间 / must be between 1 and {MAX_WORKERS}")])
    if workers > 1 and not shared_database(config.database.url):
        raise ConfigError(str(source), [(
            "database.url", None,
            f"--workers {workers}: 多个进程须共用 PostgreSQL 数据库，SQLite 只允许一个进程 / "
            "several workers share a PostgreSQL database; SQLite allows one server process")])


def run_pool(source: Path, config: ServerConfig, workers: int, log_level: str) -> int:
    """Prepare once, then start and watch the workers until SIGTERM or SIGINT."""
    check_workers(source, config, workers)
    app = ServerApp(config)
    app.migrate()
    if config.registry.file is not None:
        stats = app.load_registry(config.registry.file)
        log.info(kv("registry_loaded", **stats))
    load_token_secret(config.auth.secret_file or config.state_dir / "token.secret")
    app.engine.dispose()
    ports, held = reserve_ports(config)
    try:
        return WorkerPool(source, workers, ports, log_level).run()
    finally:
        for sock in held:
            sock.close()


def worker_app(config: ServerConfig, index: int, of: int, ports: dict[str, int]) -> ServerApp:
    """The server one worker runs (started by ``run_pool``'s parent)."""
    if not 0 <= index < of:
        raise ConfigError("--worker", [("worker", None, f"{index} of {of}")])
    app = ServerApp(worker_config(config, index, ports))
    app.reuse_port = True
    return app


def worker_config(config: ServerConfig, index: int, ports: dict[str, int]) -> ServerConfig:
    """Worker ``index``'s own copy of the config (``ports``: the ports the parent reserved)."""
    mqtt = config.mqtt
    http = config.http.model_copy(update={
        "port": ports.get("port", config.http.port),
        "redirect_port": ports.get("redirect_port", config.http.redirect_port),
        "local_port": (None if config.http.local_port is None else
                       config.http.local_port + index if config.http.local_port else 0)})
    influxdb = config.influxdb
    if config.spool_dir is not None:
        influxdb = influxdb.model_copy(update={"spool_dir": config.spool_dir / f"worker-{index}"})
    return config.model_copy(update={
        "mqtt": mqtt.model_copy(update={
            "client_id": f"{mqtt.client_id}-w{index}", "shared": True,
            "username": None if mqtt.username is None else f"{mqtt.username}-w{index}"}),
        "http": http, "influxdb": influxdb,
        "registry": config.registry.model_copy(update={"file": None})})  # loaded by the parent


def reserve_ports(config: ServerConfig) -> tuple[dict[str, int], list[socket.socket]]:
    """Ports configured as 0 chosen once for every worker; the sockets keep them reserved
    (bound with SO_REUSEPORT, never listening, so no connection lands on them)."""
    ports: dict[str, int] = {}
    held: list[socket.socket] = []
    http = config.http
    for name, port in (("port", http.port), ("redirect_port", http.redirect_port)):
        if port == 0:
            sock = shared_socket(http.host, 0)
            held.append(sock)
            ports[name] = int(sock.getsockname()[1])
    return ports, held


def _die_with_parent() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class WorkerPool:
    def __init__(self, config_path: Path, workers: int, ports: dict[str, int],
                 log_level: str) -> None:
        self.config_path = config_path
        self.workers = workers
        self.ports = ports
        self.log_level = log_level
        self._procs: dict[int, subprocess.Popen[bytes]] = {}
        self._started: dict[int, float] = {}
        self._backoff = {i: Backoff(initial_s=1.0, cap_s=30.0) for i in range(workers)}
        self._stop = threading.Event()

    def _argv(self, index: int) -> list[str]:
        ports = [f"--{name.replace('_', '-')}={port}" for name, port in self.ports.items()]
        return [sys.executable, "-m", "gridsense_server.cli", "--log-level", self.log_level,
                "run", "--config", str(self.config_path), f"--worker={index}",
                f"--of={self.workers}", *ports]

    def _start(self, index: int) -> None:
        proc = subprocess.Popen(self._argv(index), preexec_fn=_die_with_parent)
        self._procs[index], self._started[index] = proc, time.monotonic()
        log.info(kv("worker_started", worker=index, pid=proc.pid))

    def run(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self._stop.set())
        for index in range(self.workers):
            self._start(index)
        restart_at: dict[int, float] = {}
        while not self._stop.wait(0.5):
            now = time.monotonic()
            for index, proc in list(self._procs.items()):
                code = proc.poll()
                if code == EXIT_CONFIG:  # a restart cannot mend the config: stop them all
                    log.error(kv("worker_config_refused", worker=index, pid=proc.pid))
                    self._stop_all()
                    return EXIT_CONFIG
                if code is not None and index not in restart_at:
                    backoff = self._backoff[index]
                    if now - self._started[index] > HEALTHY_AFTER_S:
                        backoff.reset()
                    delay = backoff.next_delay()
                    restart_at[index] = now + delay
                    log.warning(kv("worker_exited", worker=index, pid=proc.pid, code=code,
                                   restart_in_s=round(delay, 1)))
            for index, at in list(restart_at.items()):
                if now >= at:
                    del restart_at[index]
                    self._start(index)
        return self._stop_all()

    def _stop_all(self) -> int:
        for proc in self._procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        worst = 0
        for index, proc in self._procs.items():
            try:
                code = proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.error(kv("worker_kill", worker=index, pid=proc.pid))
                proc.kill()
                code = proc.wait()
            worst = max(worst, abs(code))
        log.info(kv("workers_stopped", workers=self.workers))
        return 0 if worst in (0, signal.SIGTERM) else 1
