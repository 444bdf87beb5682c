"""``gridsense-server`` as a real process: verbs, exit codes, start-up URL, graceful SIGTERM."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from server_helpers import EdgePublisher, wait_until, write_server_config

from gridsense_devtools.processes import env_without_proxies, spawn
from gridsense_devtools.services import InfluxDB, Mosquitto
from gridsense_server.registry.passwords import verify_password

BIN = Path(sys.executable).with_name("gridsense-server")


def run_cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN), *args], input=stdin, capture_output=True, text=True,
                          timeout=120, env=env_without_proxies())


def test_hash_password_reads_stdin() -> None:
    result = run_cli("hash-password", stdin="s3cret\n")
    assert result.returncode == 0, result.stderr
    assert verify_password(result.stdout.strip(), "s3cret")
    assert run_cli("hash-password", stdin="").returncode == 2


def test_migrate_and_load_registry(tmp_path: Path, registry_file: Path) -> None:
    config = write_server_config(tmp_path, mqtt_port=1, influx_url="http://127.0.0.1:1",
                                 database="x", registry=None)
    assert run_cli("migrate", "--config", str(config)).returncode == 0
    assert (tmp_path / "state" / "server.db").exists()
    first = run_cli("load-registry", "--config", str(config), str(registry_file), "--json")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["point.created"] == 3
    second = run_cli("load-registry", "--config", str(config), str(registry_file), "--json")
    assert json.loads(second.stdout)["point.unchanged"] == 3


def test_config_and_registry_errors_exit_2_naming_file_and_line(
    tmp_path: Path, registry_file: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("mqtt:\n  hots: x\n")
    result = run_cli("run", "--config", str(bad))
    assert result.returncode == 2
    assert f"{bad}:2: mqtt.hots: unknown key" in result.stderr
    config = write_server_config(tmp_path, mqtt_port=1, influx_url="http://127.0.0.1:1",
                                 database="x", registry=None)
    registry_file.write_text(registry_file.read_text().replace("grid: g02", "grid: nope"))
    result = run_cli("load-registry", "--config", str(config), str(registry_file))
    assert result.returncode == 2
    assert f"{registry_file}:26: points[2].grid: unknown grid 'nope'" in result.stderr


@pytest.mark.usefixtures("registry_file")
def test_run_serves_ingests_and_flushes_on_sigterm(
    tmp_path: Path, mosquitto: Mosquitto, influx: tuple[InfluxDB, str]
) -> None:
    server, database = influx
    # A long flush interval: only the shutdown flush can write the reading.
    config = write_server_config(tmp_path, mqtt_port=mosquitto.port, influx_url=server.url,
                                 database=database, flush_interval_s=60)
    log_path = tmp_path / "server.log"
    proc = spawn([str(BIN), "run", "--config", str(config)], log_path)
    try:
        match = wait_until(
            lambda: re.search(r"http_listening url=(\S+)", log_path.read_text()), 60,
            "the start-up log line with the URL",
        )
        url = match.group(1)
        assert url.startswith("http://127.0.0.1:")
        local = re.search(r"http_listening .*local=(\S+)", log_path.read_text())
        assert local is not None  # the counters are there, not on the public /healthz
        wait_until(lambda: "mqtt_connected" in log_path.read_text(), 30, "MQTT connected")
        health = httpx.get(f"{url}/healthz", trust_env=False, timeout=10).json()
        assert health["status"] == "ok"
        wait_until(lambda: httpx.get(f"{local.group(1)}/healthz", trust_env=False).json()[
            "mqtt.connected"], 30)
        edge = EdgePublisher(mosquitto.port)
        try:
            ts = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
            edge.publish(edge.telemetry([("gw-01.boiler", "temperature", 21.5, ts)]))
        finally:
            edge.close()
        wait_until(lambda: httpx.get(f"{local.group(1)}/healthz", trust_env=False).json().get(
            "ingest.readings") == 1, 30, "the reading ingested")
        assert server.points("SELECT value FROM temperature", database) == []
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    rows = server.points("SELECT value, grid FROM temperature", database)
    assert [(r["value"], r["grid"]) for r in rows] == [(21.5, "g01-a")]
    text = log_path.read_text()
    assert "server_stopped" in text and "level=error" not in text, text
