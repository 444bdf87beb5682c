"""The fleet bench's pieces for several server workers: the pool (``run --workers N``) read as
one server, a fresh PostgreSQL database, and live phones (WebSocket streams) timing incidents.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
from bench_server import BIN, Server
from sqlalchemy.engine import make_url

from gridsense_devtools.http import health, login
from gridsense_devtools.processes import spawn

PHONE_USER, PHONE_PASSWORD = "control", "bench-phones"
STAFF_YAML = f"staff:\n  - {{username: {PHONE_USER}, name: 控制室, role: control, " \
             f"password: {PHONE_PASSWORD}}}\n"


def fresh_database(admin_url: str, name: str) -> str:
    """Drop and create ``name`` on the PostgreSQL server of ``admin_url``; its server URL."""
    import psycopg

    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    url = make_url(admin_url).set(drivername="postgresql+psycopg", database=name)
    return url.render_as_string(hide_password=False)


def drop_database(admin_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def cpu_seconds(pid: int) -> float:
    """User and system CPU of a process and all its children (a pool's workers)."""
    parent = psutil.Process(pid)
    total = 0.0
    for proc in [parent, *parent.children(recursive=True)]:
        try:
            times = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


class Pool(Server):
    """``gridsense-server run --workers N``: the counters summed over each worker's local port
    (``local_port + i``), RSS summed over the workers."""

    def __init__(self, config: Path, local_port: int, log: Path, workers: int) -> None:
        super().__init__(config, f"http://127.0.0.1:{local_port}", log)
        self.urls = [f"http://127.0.0.1:{local_port + i}" for i in range(workers)]
        self.workers = workers

    def start(self) -> None:
        self.proc = spawn([str(BIN / "gridsense-server"), "run", "--config", str(self.config),
                           "--workers", str(self.workers)], self.log)
        deadline = time.monotonic() + 90
        while not all((health(url) or {}).get("mqtt.connected") for url in self.urls):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"workers did not start; see {self.log}")
            time.sleep(0.2)

    def sample(self) -> dict[str, Any]:
        assert self.proc is not None
        parent = psutil.Process(self.proc.pid)
        rss = sum(p.memory_info().rss for p in parent.children(recursive=True))
        self.rss_peak = max(self.rss_peak, rss)
        total: dict[str, Any] = {}
        for url in self.urls:
            for key, value in (health(url) or {}).items():
                if isinstance(value, int | float) and not isinstance(value, bool):
                    total[key] = total.get(key, 0) + value
        return total


def phones(base: str, count: int, seconds: float, results: Any) -> None:
    """``count`` live streams (the shared port spreads them among the workers) for ``seconds``:
    how many incident events each got, and device time → phone latency."""
    from websockets.asyncio.client import connect

    token = login(base, PHONE_USER, PHONE_PASSWORD)
    latencies: list[float] = []
    received = [0] * count
    url = f"{base.replace('http://', 'ws://')}/api/v1/stream?token={token}"

    async def phone(index: int) -> None:
        async with connect(url, open_timeout=30, max_queue=None) as ws:
            while True:
                message = json.loads(await ws.recv())
                if message.get("type") != "incident":
                    continue
                received[index] += 1
                seen = datetime.fromisoformat(message["incident"]["last_seen_at"])
                latencies.append((datetime.now(UTC) - seen).total_seconds())

    async def all_phones() -> None:
        tasks = [asyncio.create_task(phone(i)) for i in range(count)]
        done, _ = await asyncio.wait(tasks, timeout=seconds)
        failed = sum(1 for task in done if task.exception() is not None)
        for task in tasks:
            task.cancel()
        results.put({"phones": count, "failed": failed, "received": received,
                     "latencies": latencies})

    asyncio.run(all_phones())
