"""The broker accounts from the operator's side: ``gridsense-server broker`` on a real
Mosquitto with the dynamic-security plugin, the shipped broker config (dynsec and TLS) as it
runs, and a running server under its own account keeping both its sessions while an intruder
tries their client ids."""

from __future__ import annotations

import asyncio
import getpass
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from broker_support import ADMIN, NOT_AUTHORIZED, DynsecBroker, connect, start_dynsec_broker
from sqlalchemy import select

from gridsense_devtools.http import login, try_http_json
from gridsense_devtools.ports import free_port
from gridsense_devtools.processes import Procs, async_wait_until, spawn, stop_process, wait_until
from gridsense_devtools.server_config import local_url_of, write_server_config
from gridsense_devtools.server_process import launch_server, write_registry_and_config
from gridsense_devtools.services import InfluxDB, dynsec_plugin
from gridsense_protocol import Kind
from gridsense_server.acks import InboundMessage
from gridsense_server.broker import Role
from gridsense_server.broker.acl import rules_for
from gridsense_server.broker.mosquitto_dynsec import dynsec_acls
from gridsense_server.cli import main
from gridsense_server.config import MqttConfig, MqttTlsConfig
from gridsense_server.counters import Counters
from gridsense_server.db import make_engine, make_session_factory
from gridsense_server.db.web_models import AuditEntry
from gridsense_server.ingest.bridge import MqttBridge
from gridsense_server.ingest.handoff import Handoff
from gridsense_server.pki import DeploymentCA

REPO = Path(__file__).resolve().parents[2]
POINTS = {"gw-01.boiler": ("gw-01", "g01-a")}


@pytest.fixture
def dynsec(tmp_path: Path) -> Iterator[DynsecBroker]:
    running = start_dynsec_broker(tmp_path / "broker")
    yield running
    running.broker.stop()


def broker_cli(dynsec: DynsecBroker, *argv: str) -> int:
    return main(["broker", "account", *argv, "--host", "127.0.0.1", "--port", str(dynsec.port),
                 "--admin-password-file", str(dynsec.admin_password_file)])


def test_cli_adds_lists_changes_and_revokes(
    dynsec: DynsecBroker, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = tmp_path / "secrets" / "gw-09.password"
    assert broker_cli(dynsec, "add", "gw-09", "--role", "gateway",
                      "--password-file", str(secret)) == 0
    out = capsys.readouterr().out
    assert "已添加 / added: gw-09" in out and str(secret) in out
    # A generated password, in a file only its owner reads, that the broker takes.
    assert oct(secret.stat().st_mode & 0o777) == "0o600"
    password = secret.read_text().strip()
    assert len(password) >= 24 and password not in out
    gateway = connect(dynsec.port, "gw-09", password, "gw-09")
    assert gateway.accepted

    assert broker_cli(dynsec, "list", "--json") == 0
    listed = {a["name"]: a for a in json.loads(capsys.readouterr().out)}
    assert listed["gw-09"] == {"name": "gw-09", "role": "gateway", "logins": ["gw-09"],
                               "disabled": False}
    assert listed[ADMIN]["role"] is None

    # Without a password file the new password is printed once.
    assert broker_cli(dynsec, "passwd", "gw-09", "--json") == 0
    changed = json.loads(capsys.readouterr().out)
    assert gateway.wait_disconnected()
    assert connect(dynsec.port, "gw-09", changed["password"], "gw-09").accepted
    assert not connect(dynsec.port, "gw-09", password, "gw-09").accepted

    assert broker_cli(dynsec, "revoke", "gw-09") == 0
    assert "已吊销" in capsys.readouterr().out
    assert broker_cli(dynsec, "revoke", "gw-09") == 2  # not there: a usage error
    assert "没有账号 gw-09 / no account gw-09" in capsys.readouterr().err


def test_cli_refresh_brings_every_accounts_acls_to_this_version(
    dynsec: DynsecBroker, capsys: pytest.CaptureFixture[str]
) -> None:
    """Accounts made by an older version lack topics added since (a gateway's acknowledgements):
    one command re-applies every role as this version spells it, the admin untouched."""
    passwords = {"gw-01": "gw-01-password-secret", "gw-02": "gw-02-password-secret",
                 "gridsense-server-1": "server-1-password-secret"}
    with dynsec.accounts() as accounts:
        for name, password in passwords.items():
            role = Role.SERVER if name.startswith("gridsense-server") else Role.GATEWAY
            accounts.add(name, role, password)
        for gateway in ("gw-01", "gw-02"):  # as an older version left them: no ack topic
            stale = [acl for acl in dynsec_acls(rules_for(gateway, Role.GATEWAY))
                     if not acl["topic"].endswith("/ack")]
            accounts.link.request([{"command": "modifyRole", "acls": stale,
                                    "rolename": f"gridsense-gateway:{gateway}"}])
    server = connect(dynsec.port, "gridsense-server-1", passwords["gridsense-server-1"],
                     "gridsense-server-1")
    gateways = {g: connect(dynsec.port, g, passwords[g], g) for g in ("gw-01", "gw-02")}
    try:
        for gateway, peer in gateways.items():
            assert peer.subscribe(f"gridsense/v1/{gateway}/ack")[0].is_failure
        assert broker_cli(dynsec, "refresh") == 0
        assert "重新应用 3 个账号" in capsys.readouterr().out
        for gateway, peer in gateways.items():
            assert not peer.subscribe(f"gridsense/v1/{gateway}/ack")[0].is_failure
            server.publish(f"gridsense/v1/{gateway}/ack", b"settled")
            assert peer.next_message() == (f"gridsense/v1/{gateway}/ack", b"settled")
    finally:
        for peer in (server, *gateways.values()):
            peer.close()


def test_cli_with_the_server_config_records_account_changes_in_the_audit_log(
    dynsec: DynsecBroker, tmp_path: Path
) -> None:
    folder = tmp_path / "server"
    (folder / "state").mkdir(parents=True)
    config = write_server_config(folder, mqtt_port=dynsec.port, influx_url="http://127.0.0.1:9",
                                 database="unused")
    common = ["--config", str(config), "--admin-password-file", str(dynsec.admin_password_file)]
    assert main(["broker", "account", "add", "gw-09", "--role", "gateway", "--password-file",
                 str(tmp_path / "gw-09.password"), *common]) == 0
    assert main(["broker", "account", "list", *common]) == 0
    assert main(["broker", "account", "revoke", "gw-09", *common]) == 0

    engine = make_engine(f"sqlite:///{folder / 'state' / 'server.db'}")
    try:
        with make_session_factory(engine)() as session:
            rows = session.execute(select(AuditEntry.action, AuditEntry.target, AuditEntry.actor)
                                   .order_by(AuditEntry.id)).all()
    finally:
        engine.dispose()
    assert [(action, target) for action, target, _ in rows] == [
        ("broker.account.add", "gw-09"), ("broker.account.revoke", "gw-09")]
    assert all(actor.startswith("cli:") for _, _, actor in rows)


def test_cli_exit_codes_and_messages(
    dynsec: DynsecBroker, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert broker_cli(dynsec, "add", "a/b", "--role", "gateway") == 2
    assert "账号名" in capsys.readouterr().err
    wrong = tmp_path / "wrong.password"
    wrong.write_text("not-the-admin-password\n")
    code = main(["broker", "account", "list", "--port", str(dynsec.port),
                 "--admin-password-file", str(wrong)])
    assert code == 1
    assert "代理拒绝管理员" in capsys.readouterr().err
    dynsec.broker.stop()
    assert broker_cli(dynsec, "list") == 1
    assert "连不上代理" in capsys.readouterr().err


def test_cli_init_writes_a_state_file_the_broker_runs_with(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state, admin_secret = tmp_path / "dynamic-security.json", tmp_path / "admin.password"
    assert main(["broker", "init", "--file", str(state),
                 "--admin-password-file", str(admin_secret)]) == 0
    assert "已写出 / written" in capsys.readouterr().out
    document = json.loads(state.read_text())
    assert [c["username"] for c in document["clients"]] == [ADMIN]
    assert main(["broker", "init", "--file", str(state),
                 "--admin-password-file", str(admin_secret)]) == 0
    assert "已存在" in capsys.readouterr().out


def test_a_running_server_keeps_its_sessions_while_an_intruder_tries_its_client_ids(
    dynsec: DynsecBroker, tmp_path: Path, influx: tuple[InfluxDB, str], procs: Procs
) -> None:
    secrets = tmp_path / "secrets"
    assert broker_cli(dynsec, "add", "gridsense-server-1", "--role", "server",
                      "--password-file", str(secrets / "server.password")) == 0
    for gateway in ("gw-01", "gw-02"):
        assert broker_cli(dynsec, "add", gateway, "--role", "gateway",
                          "--password-file", str(secrets / f"{gateway}.password")) == 0
    influx_server, database = influx
    config, base = write_registry_and_config(tmp_path, dynsec.port, influx_server.url, database,
                                             POINTS)
    document = yaml.safe_load(config.read_text())
    document["mqtt"].update(client_id="gridsense-server-1", username="gridsense-server-1",
                            password_file=str(secrets / "server.password"))
    config.write_text(yaml.safe_dump(document))
    launch_server(procs, config, base)
    gateway_config = tmp_path / "gw-01.yaml"
    gateway_config.write_text(f"""
gateway: {{id: gw-01, state_dir: {tmp_path / "edge-state"}}}
mqtt: {{host: 127.0.0.1, port: {dynsec.port}, keepalive_s: 10,
       password_file: {secrets / "gw-01.password"}}}
health: {{interval_s: 1}}
""")
    procs.start("edge", "gridsense-edge", "run", "--config", str(gateway_config))
    control = login(base, "control")

    def seq_last() -> int | None:
        views = try_http_json("GET", f"{base}/api/v1/gateways", control) or []
        return next((g["seq_last"] for g in views if g["id"] == "gw-01"), None)

    details = local_url_of(config)  # the counters: on the local-only port
    assert details is not None

    def health() -> dict:
        return try_http_json("GET", f"{details}/healthz", None) or {}

    try:
        wait_until(lambda: seq_last() is not None, 60, "gw-01's health reaching the server")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{procs.logs()}") from None
    assert health()["mqtt.connects"] == 2  # the events and the telemetry session

    gw02 = (secrets / "gw-02.password").read_text().strip()
    for client_id in ("gridsense-server-1", "gridsense-server-1.telemetry", "gw-01"):
        intruder = connect(dynsec.port, "gw-02", gw02, client_id)
        assert intruder.connack is not None and intruder.connack.value == NOT_AUTHORIZED

    # Health messages sent after the attempts arrive over the same sessions: a session taken
    # over would have been disconnected (and counted) before they could.
    after = seq_last() or 0
    wait_until(lambda: (seq_last() or 0) > after + 1, 30, "gw-01's later health messages")
    counters = health()
    assert counters["mqtt.connects"] == 2 and counters.get("mqtt.disconnects", 0) == 0, counters
    assert "mqtt_disconnected" not in procs.logs()
    assert "mqtt_connection_lost" not in procs.logs()


async def test_the_shipped_broker_config_runs_dynsec_and_tls(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """firmware_configs/broker/mosquitto.conf, its paths and ports moved into the test's folder,
    runs in a real Mosquitto: the operator's steps (broker init, account add over TLS) give a
    server login that connects over TLS with the deployment CA and subscribes."""
    ca, _ = DeploymentCA.init(tmp_path / "ca")
    broker_cert = ca.issue_server("broker", dns=["localhost"], ips=["127.0.0.1"])
    state, admin_secret = tmp_path / "dynamic-security.json", tmp_path / "admin.password"
    assert main(["broker", "init", "--file", str(state),
                 "--admin-password-file", str(admin_secret)]) == 0
    plain, tls_port = free_port(), free_port()
    text = (REPO / "firmware_configs" / "broker" / "mosquitto.conf").read_text()
    for shipped, here in {
        "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so": dynsec_plugin(),
        "/var/lib/mosquitto/dynamic-security.json": state,
        "/etc/mosquitto/certs/ca.crt": ca.cert_file,
        "/etc/mosquitto/certs/broker.crt": broker_cert.cert_file,
        "/etc/mosquitto/certs/broker.key": broker_cert.key_file,
        "/var/lib/mosquitto/": f"{tmp_path}/",
        "listener 1883 ": f"listener {plain} ",
        "listener 8883": f"listener {tls_port} 127.0.0.1",
    }.items():
        assert shipped in text, shipped
        text = text.replace(shipped, str(here))
    config = tmp_path / "mosquitto.conf"
    config.write_text(text + f"user {getpass.getuser()}\n")
    broker = spawn(["mosquitto", "-c", str(config)], tmp_path / "mosquitto.log")
    try:
        secret = tmp_path / "server.password"
        add = ["broker", "account", "add", "gridsense-server-7", "--role", "server",
               "--password-file", str(secret), "--host", "localhost", "--port", str(tls_port),
               "--ca-file", str(ca.cert_file), "--admin-password-file", str(admin_secret)]
        await async_wait_until(lambda: main(add) == 0, 20, "the account added over TLS")
        capsys.readouterr()
        mqtt = MqttConfig(host="localhost", port=tls_port, username="gridsense-server-7",
                          password_file=secret, tls=MqttTlsConfig(ca_file=ca.cert_file))
        bridge = MqttBridge(mqtt, Counters(), client_id="gridsense-server-7",
                            kinds=(Kind.TELEMETRY,))
        bridge.start(Handoff[InboundMessage](10, asyncio.get_running_loop()))
        try:
            await async_wait_until(bridge.subscribed.is_set, 20, "subscribed over TLS")
        finally:
            bridge.stop()
        # The plugin keeps its state file current itself: the account is written there.
        assert "gridsense-server-7" in state.read_text()
    finally:
        stop_process(broker)
