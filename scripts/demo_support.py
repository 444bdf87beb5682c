"""What the demo's parts share: child processes stopped in order, waiting, plain HTTP calls.

Standard library only (urllib, no proxies: the demo talks to 127.0.0.1).
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from devservices import env_without_proxies

REPO = Path(__file__).resolve().parent.parent


class Processes:
    """Child processes in start order; stopped in reverse order, gently first."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.children: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        log = (self.logs / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=env_without_proxies(), cwd=REPO, start_new_session=True,
        )
        log.close()
        self.children.append((name, proc))
        return proc

    def check(self) -> None:
        for name, proc in self.children:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"{name} exited with {proc.returncode}; see {self.logs / name}.log"
                )

    def stop_all(self) -> None:
        for _name, proc in reversed(self.children):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        for _name, proc in reversed(self.children):
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def wait_for(what: str, check: Callable[[], bool], timeout: float, procs: Processes) -> None:
    """Poll ``check`` until it holds; a child that died meanwhile stops the wait at once."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        procs.check()
        if check():
            return
        time.sleep(0.2)
    raise TimeoutError(f"{what} not ready after {timeout:.0f}s")


def http(url: str, token: str | None = None, body: bytes | None = None,
         content_type: str = "application/json", timeout: float = 10) -> tuple[bytes, str]:
    """GET (or POST with ``body``); returns the body and its content type."""
    headers = {"Content-Type": content_type}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=body, headers=headers)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=timeout) as response:
        return response.read(), response.headers.get("Content-Type", "")


def http_json(url: str, token: str | None = None, body: dict[str, Any] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    return json.loads(http(url, token, data)[0])


def login(base: str, username: str = "control") -> str:
    """A bearer token for one of the demo's accounts (password ``demo``)."""
    answer = http_json(f"{base}/api/v1/auth/token", body={"username": username,
                                                          "password": "demo"})
    return str(answer["access_token"])


def server_up(base: str) -> bool:
    try:
        http_json(f"{base}/healthz")
        return True
    except (OSError, urllib.error.URLError, ValueError):
        return False
