"""The server as a real process — so a test can kill -9 it — and its checker CLI."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
from server_helpers import wait_until

from devservices import env_without_proxies

BIN = Path(sys.executable).with_name("gridsense-server")


class ServerProcess:
    """``gridsense-server run --config ...``; every start appends to one log file."""

    def __init__(self, config: Path, http_port: int, log_path: Path) -> None:
        self.config = config
        self.url = f"http://127.0.0.1:{http_port}"
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, *, wait_mqtt: bool = True) -> ServerProcess:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [str(BIN), "run", "--config", str(self.config)], stdout=log,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env_without_proxies(),
                start_new_session=True,
            )
        wait_until(lambda: self.health() is not None or not self.alive(), 60, "server /healthz")
        assert self.alive(), self.log()
        if wait_mqtt:
            wait_until(lambda: (self.health() or {}).get("mqtt.connected"), 30, "MQTT connected")
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def health(self) -> dict[str, Any] | None:
        try:
            response = httpx.get(f"{self.url}/healthz", trust_env=False, timeout=5)
        except httpx.HTTPError:
            return None
        return response.json() if response.status_code == 200 else None

    def counter(self, name: str) -> int:
        return int((self.health() or {}).get(name, 0))

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]


def run_check(config: Path, *args: str) -> tuple[int, Any, str]:
    """``gridsense-server check --json``: (exit code, parsed report or None, stderr)."""
    result = subprocess.run([str(BIN), "check", "--config", str(config), "--json", *args],
                            capture_output=True, text=True, timeout=120,
                            env=env_without_proxies(), check=False)
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        report = None
    return result.returncode, report, result.stderr
