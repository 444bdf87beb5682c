"""Two server processes on one PostgreSQL database and one broker (a share group): what one of
them does reaches the live streams of the other, a page is sent once and reaches the phone
wherever it is connected, failed logins count everywhere, and ``run --workers 2`` restarts a
worker killed with -9."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
import urllib.error
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from server_helpers import REGISTRY_YAML, EdgePublisher, wait_until, write_server_config
from sqlalchemy import select
from websockets.sync.client import connect

from gridsense_devtools.community import FAST
from gridsense_devtools.http import http_json, login
from gridsense_devtools.ports import free_port
from gridsense_devtools.processes import BIN, spawn, stop_process
from gridsense_devtools.server_process import ServerProcess
from gridsense_devtools.services import InfluxDB, Mosquitto
from gridsense_server.db import make_engine, make_session_factory
from gridsense_server.db.cluster_models import LivePresence
from gridsense_server.db.models import Notification

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(300)]


class Stream:
    """One person's live stream on one server, every message kept."""

    def __init__(self, base: str, username: str, password: str = "demo") -> None:
        token = login(base, username, password)
        self.messages: list[dict[str, Any]] = []
        self._ws = connect(f"{base.replace('http://', 'ws://')}/api/v1/stream?token={token}",
                           open_timeout=10)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                raw = self._ws.recv(timeout=0.2)
            except TimeoutError:
                continue
            except Exception:
                return
            self.messages.append(json.loads(raw))

    def events(self, incident_id: str) -> list[str]:
        return [m.get("event", "") for m in list(self.messages)
                if m.get("type") == "incident" and m["incident"]["id"] == incident_id]

    def pages(self, incident_id: str) -> list[dict[str, Any]]:
        return [m for m in list(self.messages)
                if m.get("type") == "page" and m.get("incident_id") == incident_id]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._ws.close()


def server_config(folder: Path, mosquitto: Mosquitto, influx: tuple[InfluxDB, str], db_url: str,
                  client_id: str, secret: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "registry.yaml").write_text(REGISTRY_YAML, encoding="utf-8")
    server, database = influx
    return write_server_config(
        folder, mqtt_port=mosquitto.port, influx_url=server.url, database=database,
        db_url=db_url, http_port=free_port(), client_id=client_id, shared=True,
        # Every process signs and checks the same tokens.
        auth_yaml=f"secret_file: {secret}", lifecycle=FAST)


def http_ports(config: Path) -> tuple[int, int]:
    """(the public port, the local-only one) a config names."""
    http = yaml.safe_load(config.read_text(encoding="utf-8"))["http"]
    return int(http["port"]), int(http["local_port"])


@pytest.fixture
def two_servers(tmp_path: Path, mosquitto: Mosquitto, influx: tuple[InfluxDB, str],
                pg_url: str) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    secret = tmp_path / "token.secret"
    servers = []
    try:
        for name in ("a", "b"):  # one after the other: the first migrates and loads
            config = server_config(tmp_path / name, mosquitto, influx, pg_url, f"srv-{name}",
                                   secret)
            servers.append(ServerProcess(config, http_ports(config)[0],
                                         tmp_path / f"{name}.log").start())
        yield servers[0], servers[1]
    finally:
        for server in servers:
            server.stop()


def present(db_url: str, username: str) -> bool:
    engine = make_engine(db_url)
    try:
        with make_session_factory(engine)() as session:
            return session.scalar(select(LivePresence).where(
                LivePresence.username == username)) is not None
    finally:
        engine.dispose()


def notifications(db_url: str, incident_id: str) -> list[tuple[str, int, str, str, str]]:
    engine = make_engine(db_url)
    try:
        with make_session_factory(engine)() as session:
            return [(r.step, r.loop, r.recipient, r.channel, r.status) for r in session.scalars(
                select(Notification).where(Notification.incident_id == incident_id))]
    finally:
        engine.dispose()


def test_a_change_made_through_one_process_reaches_a_phone_on_the_other(
        two_servers: tuple[ServerProcess, ServerProcess], mosquitto: Mosquitto,
        pg_url: str) -> None:
    a, b = two_servers
    phone = Stream(b.url, "worker-g01")  # the worker's phone is connected to B only
    control = Stream(a.url, "control", "ctl")  # the control room to A
    edge = EdgePublisher(mosquitto.port, "gw-01")
    try:
        wait_until(lambda: present(pg_url, "worker-g01"), 30, "the phone's presence row")
        edge.publish(edge.incident("gw-01.boiler"))
        wait_until(lambda: control.messages and phone.messages, 30, "the incident on both")

        def opened_id() -> str | None:
            for m in control.messages:
                if m.get("type") == "incident" and m.get("event") == "opened":
                    return str(m["incident"]["id"])
            return None

        wait_until(lambda: opened_id() is not None, 30, "the incident opened")
        incident_id = opened_id()
        assert incident_id is not None
        # Whichever process took the message from the share group, both streams got it.
        wait_until(lambda: "opened" in phone.events(incident_id), 30, "opened on B")
        # The first escalation step pages the grid's workers on the app channel: once, and on
        # the phone connected to B whichever process sent it.
        wait_until(lambda: phone.pages(incident_id), 30, "the page on the phone")
        wait_until(lambda: any(n[4] == "sent" for n in notifications(pg_url, incident_id)), 30,
                   "the page recorded as sent")
        rows = notifications(pg_url, incident_id)
        first = [n for n in rows if n[2] == "worker-g01" and n[3] == "app"]
        assert len(first) == 1 and first[0][4] == "sent", rows
        keys = [n[:4] for n in rows]
        assert len(keys) == len(set(keys)), f"paged twice: {rows}"

        # An action taken on A reaches the phone on B.
        token = login(a.url, "worker-g01")
        http_json("POST", f"{a.url}/api/v1/incidents/{incident_id}/accept", token,
                  {"note": "在路上"})
        wait_until(lambda: "accept" in phone.events(incident_id), 30, "accept on B")
        time.sleep(1)  # anything doubled would have arrived by now
        assert phone.events(incident_id).count("opened") == 1
        assert phone.events(incident_id).count("accept") == 1
        assert len(phone.pages(incident_id)) == 1
        assert b.counter("live.relay_received") + a.counter("live.relay_received") >= 2
    finally:
        edge.close()
        phone.close()
        control.close()


def test_failed_logins_on_one_process_lock_the_account_on_the_other(
        two_servers: tuple[ServerProcess, ServerProcess]) -> None:
    a, b = two_servers
    refused = None
    for _ in range(30):
        try:
            login(a.url, "worker-g01", "wrong password")
        except urllib.error.HTTPError as exc:
            if exc.code == 429:
                refused = exc
                break
            assert exc.code == 401
    assert refused is not None, "A never throttled the guesses"
    with pytest.raises(urllib.error.HTTPError) as on_b:
        login(b.url, "worker-g01")  # the right password, on the other process
    assert on_b.value.code == 429


def _worker_pids(log: Path, index: int) -> list[int]:
    text = log.read_text(errors="replace")
    return [int(p) for p in re.findall(rf"worker_started worker={index} pid=(\d+)", text)]


def test_run_workers_two_restarts_a_worker_killed_hard(
        tmp_path: Path, mosquitto: Mosquitto, influx: tuple[InfluxDB, str], pg_url: str) -> None:
    config = server_config(tmp_path, mosquitto, influx, pg_url, "pool",
                           tmp_path / "token.secret")
    port, local = http_ports(config)
    log = tmp_path / "pool.log"
    pool = spawn([str(BIN / "gridsense-server"), "run", "--config", str(config),
                  "--workers", "2"], log)
    try:
        workers = [ServerProcess(config, port, log) for _ in range(2)]
        for index, worker in enumerate(workers):
            worker.details_url = f"http://127.0.0.1:{local + index}"
        for worker in workers:
            wait_until(lambda w=worker: (w.health() or {}).get("mqtt.connected"), 60,
                       f"worker on {worker.details_url} connected\n{log.read_text()[-3000:]}")
        # The public port answers, whichever worker the kernel hands the connection to.
        assert login(f"http://127.0.0.1:{port}", "control", "ctl")
        first = _worker_pids(log, 1)
        assert len(first) == 1
        os.kill(first[0], signal.SIGKILL)
        wait_until(lambda: len(_worker_pids(log, 1)) == 2, 60, "worker 1 started again")
        wait_until(lambda: (workers[1].health() or {}).get("mqtt.connected"), 60,
                   "the new worker 1 connected")
        assert "worker_exited worker=1" in log.read_text()
        assert pool.poll() is None
    finally:
        code = stop_process(pool, timeout=90)
    assert code == 0, log.read_text()[-4000:]


def test_several_workers_refuse_sqlite(tmp_path: Path, mosquitto: Mosquitto,
                                       influx: tuple[InfluxDB, str]) -> None:
    server, database = influx
    config = write_server_config(tmp_path, mqtt_port=mosquitto.port, influx_url=server.url,
                                 database=database, http_port=free_port())
    result = subprocess.run([str(BIN / "gridsense-server"), "run", "--config", str(config),
                             "--workers", "2"], capture_output=True, text=True, timeout=60,
                            check=False)
    assert result.returncode == 2, result.stderr
    assert "database.url" in result.stderr and "PostgreSQL" in result.stderr
    assert "多个进程须共用 PostgreSQL 数据库" in result.stderr
