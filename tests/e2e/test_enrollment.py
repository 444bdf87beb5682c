"""Enrollment end to end: a real server (process), a real Mosquitto with the dynamic-security
plugin and a TLS listener that requires client certificates, the real ``gridsense-edge``
commands. The control room creates a gateway and gets a code; the gateway enrolls, its agent
publishes over TLS with the issued certificate and password, its readings reach InfluxDB;
codes are single use (also under a race), expire and can be wrong; a revoked, connected
gateway is dropped within the bound and cannot come back."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import threading
import urllib.error
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from broker_support import DynsecBroker, connect, peers, start_dynsec_broker

from gridsense_devtools.community import registry_yaml
from gridsense_devtools.files import write_secret
from gridsense_devtools.http import http, http_json, login
from gridsense_devtools.ports import free_port
from gridsense_devtools.processes import BIN, Procs, env_without_proxies, wait_until
from gridsense_devtools.server_process import launch_server
from gridsense_devtools.services import InfluxDB, TlsListener
from gridsense_edge.enroll.state import new_key_and_request
from gridsense_server.broker import Role
from gridsense_server.pki import DeploymentCA

SERVER_ID = "gridsense-server-1"
SERVER_PASSWORD = "server-1-password-secret"
GATEWAY = "gw-new"
SENSOR = "28-0316a2797aff"
REVOKE_BOUND_S = 5.0  # the issue's bound: a revoked gateway is off within 5 s
# A second street and community the installer has nothing to do with.
OTHER_STREET = """  - id: hd
    name: 河东街道
    communities:
      - id: dy
        name: 东苑社区
        grids:
          - {id: g09, name: 第九网格}
"""
INSTALLERS = ("  - {username: installer-1, name: 王工, role: installer, communities: [ly], "
              "password: demo}\n")


@dataclass
class Site:
    base: str
    token: str
    ca: DeploymentCA
    dynsec: DynsecBroker
    db: Path
    procs: Procs
    tmp: Path
    influx: InfluxDB
    database: str

    def api(self, method: str, path: str, body: Any = None) -> Any:
        return http_json(method, self.base + path, self.token, body)

    def create(self, gateway: str) -> dict[str, Any]:
        return self.api("POST", "/api/v1/gateways",
                        {"id": gateway, "community": "ly", "name": "新网关", "location": "B1"})

    def audit(self, action: str) -> list[dict[str, Any]]:
        return self.api("GET", f"/api/v1/audit?action={action}")["entries"]


def enroll_cli(site: Site, code: str, state_dir: Path, *extra: str,
               fingerprint: str | None = None) -> tuple[int, dict[str, Any]]:
    result = subprocess.run(
        [str(BIN / "gridsense-edge"), "enroll", "--server", site.base, "--code", code,
         "--ca-fingerprint", fingerprint or site.ca.fingerprint, "--state-dir", str(state_dir),
         "--json", *extra],
        capture_output=True, text=True, timeout=60, env=env_without_proxies(), check=False)
    return result.returncode, json.loads(result.stdout)


@pytest.fixture
def site(tmp_path: Path, influx: tuple[InfluxDB, str], procs: Procs) -> Iterator[Site]:
    ca, _ = DeploymentCA.init(tmp_path / "ca")
    broker_cert = ca.issue_server("broker", dns=["localhost"], ips=["127.0.0.1"])
    listener = TlsListener(ca.cert_file, broker_cert.cert_file, broker_cert.key_file,
                           require_certificate=True)
    dynsec = start_dynsec_broker(tmp_path / "broker", tls=listener)
    with dynsec.accounts() as accounts:
        accounts.add(SERVER_ID, Role.SERVER, SERVER_PASSWORD)
    write_secret(tmp_path / "server.password", SERVER_PASSWORD + "\n")
    registry = registry_yaml({"gw-01.boiler": ("gw-01", "g01-a")}).replace(
        "points:", OTHER_STREET + "points:") + INSTALLERS
    (tmp_path / "registry.yaml").write_text(registry, encoding="utf-8")
    server_db = tmp_path / "server.db"
    http_port = free_port()
    base = f"http://127.0.0.1:{http_port}"
    config = tmp_path / "server.yaml"
    config.write_text(f"""
mqtt: {{host: 127.0.0.1, port: {dynsec.port}, client_id: {SERVER_ID}, username: {SERVER_ID},
       password_file: server.password}}
influxdb: {{url: "{influx[0].url}", database: {influx[1]}, batch_size: 1000,
           flush_interval_s: 0.5}}
database: {{url: "sqlite:///{server_db}"}}
registry: {{file: registry.yaml}}
http: {{host: 127.0.0.1, port: {http_port}}}
broker: {{admin: gridsense-admin, admin_password_file: {dynsec.admin_password_file}}}
enrollment: {{server_url: "{base}", broker_port: {listener.port}, broker_tls: true,
             broker_server_name: localhost, ca_dir: ca}}
""")
    try:
        launch_server(procs, config, base)
        yield Site(base, login(base), ca, dynsec, server_db, procs, tmp_path, *influx)
    finally:
        procs.stop_all()
        dynsec.broker.stop()


def add_thermometer(config_path: Path, w1: Path) -> None:
    """The installer's step after enrolling: one DS18B20 (a 1-Wire tree the test writes)."""
    folder = w1 / SENSOR
    folder.mkdir(parents=True)
    scratch = "72 01 4b 46 7f ff 0e 10 57"
    (folder / "w1_slave").write_text(f"{scratch} : crc=57 YES\n{scratch} t=23125\n")
    config = yaml.safe_load(config_path.read_text())
    config["devices"] = [{"type": "onewire_temperature", "point": f"{GATEWAY}.boiler",
                          "sensor": SENSOR, "base_path": str(w1), "poll_interval_s": 1}]
    config_path.write_text(yaml.safe_dump(config))


def test_a_gateway_enrolls_publishes_over_tls_and_is_revoked(site: Site) -> None:
    created = site.create(GATEWAY)
    assert created["ca_sha256"] == site.ca.fingerprint
    assert f"ca_sha256={site.ca.fingerprint}" in created["enroll_uri"]
    svg, kind = http(site.base + created["qr_svg_url"], site.token)
    assert kind.startswith("image/svg+xml") and b"<svg" in svg

    state = site.tmp / "edge-state"
    code, answer = enroll_cli(site, created["code"], state)
    assert code == 0, answer
    assert answer["gateway"] == GATEWAY and answer["tls"] is True
    for name in ("gateway.key", "gateway.crt", "ca.crt", "mqtt.password", "gateway.yaml"):
        assert stat.S_IMODE(os.stat(state / name).st_mode) == 0o600, name

    # The code is spent: a second use is refused, by name, and audited.
    again, refused = enroll_cli(site, created["code"], site.tmp / "other-state")
    assert again == 4 and refused["error"] == "used", refused
    assert not (site.tmp / "other-state" / "gateway.yaml").exists()
    assert any(json.loads(e["detail"])["reason"] == "used"
               for e in site.audit("gateway.enroll_refused"))
    assert [e["target"] for e in site.audit("gateway.enroll")] == [GATEWAY]

    add_thermometer(state / "gateway.yaml", site.tmp / "w1")
    edge = site.procs.start("edge", "gridsense-edge", "run", "--config",
                            str(state / "gateway.yaml"))
    site.procs.wait_until(lambda: site.influx.points(
        f"SELECT * FROM temperature WHERE gateway = '{GATEWAY}'", site.database), 60,
        "the enrolled gateway's readings in InfluxDB")

    revoked = site.api("POST", f"/api/v1/gateways/{GATEWAY}/revoke")
    assert revoked["broker_account_removed"] and revoked["cert_serial"]
    # The broker drops the live connection (the agent says so), and its retries are refused.
    wait_until(lambda: "event=mqtt_disconnected" in edge.log(), REVOKE_BOUND_S,
               "the revoked gateway disconnected")
    site.procs.wait_until(lambda: 'mqtt_connect_refused gateway=gw-new reason="Not authorized"'
                          in edge.log(), 30, "the revoked gateway's reconnection refused")
    password = (state / "mqtt.password").read_text().strip()
    with peers() as opened:
        comeback = connect(site.dynsec.port, GATEWAY, password, GATEWAY)
        opened.append(comeback)
        assert not comeback.accepted
    with sqlite3.connect(site.db) as db:
        assert db.execute("SELECT serial FROM revoked_certificates").fetchall() == [
            (revoked["cert_serial"],)]
    assert [e["target"] for e in site.audit("gateway.revoke")] == [GATEWAY]

    # Re-enrolling takes a new code (here as the QR code's URI); the old one is void.
    fresh = site.api("POST", f"/api/v1/gateways/{GATEWAY}/code")
    result = subprocess.run(
        [str(BIN / "gridsense-edge"), "enroll", "--uri", fresh["enroll_uri"], "--state-dir",
         str(state), "--force", "--json"],
        capture_output=True, text=True, timeout=60, env=env_without_proxies(), check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout)["gateway"] == GATEWAY


def test_expired_and_wrong_codes_are_refused(site: Site) -> None:
    created = site.create("gw-late")
    with sqlite3.connect(site.db) as db:  # the day passes
        db.execute("UPDATE enrollment_codes SET expires_at = created_at")
    code, answer = enroll_cli(site, created["code"], site.tmp / "late")
    assert code == 4 and answer["error"] == "expired", answer
    code, answer = enroll_cli(site, "ABCDE-FGHJK", site.tmp / "wrong")
    assert code == 4 and answer["error"] == "wrong", answer
    # A server whose CA is not the one the installer was told about is not trusted at all.
    fresh = site.api("POST", "/api/v1/gateways/gw-late/code")
    code, answer = enroll_cli(site, fresh["code"], site.tmp / "spoof", fingerprint="ab" * 32)
    assert code == 4 and answer["error"] == "fingerprint_mismatch", answer
    assert {json.loads(e["detail"])["reason"] for e in site.audit("gateway.enroll_refused")} \
        == {"expired", "wrong"}


def test_two_concurrent_uses_of_one_code_one_wins(site: Site) -> None:
    created = site.create("gw-race")
    requests = [new_key_and_request()[1] for _ in range(4)]
    answers: list[int] = []
    start = threading.Barrier(len(requests))

    def use(csr: str) -> None:
        start.wait()
        try:
            http_json("POST", site.base + "/api/v1/enroll", None,
                      {"code": created["code"], "csr": csr})
            answers.append(200)
        except urllib.error.HTTPError as exc:
            answers.append(exc.code)

    threads = [threading.Thread(target=use, args=(csr,)) for csr in requests]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(answers) == [200, 410, 410, 410], answers
    with site.dynsec.accounts() as accounts:
        assert "gw-race" in [a.name for a in accounts.list()]


def test_only_control_and_installers_create_gateways(site: Site) -> None:
    worker = login(site.base, "worker-g01")
    with pytest.raises(urllib.error.HTTPError) as refused:
        http_json("POST", site.base + "/api/v1/gateways", worker,
                  {"id": "gw-x", "community": "ly", "name": "x"})
    assert refused.value.code == 403
    installer = login(site.base, "installer-1")
    created = http_json("POST", site.base + "/api/v1/gateways", installer,
                        {"id": "gw-y", "community": "ly", "name": "y"})
    assert created["gateway"] == "gw-y" and len(created["code"]) == 11
    with pytest.raises(urllib.error.HTTPError) as elsewhere:
        http_json("POST", site.base + "/api/v1/gateways", installer,
                  {"id": "gw-z", "community": "dy", "name": "z"})
    assert elsewhere.value.code == 403
