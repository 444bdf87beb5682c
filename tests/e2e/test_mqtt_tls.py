"""MQTT over real TLS Mosquitto with certificates from the deployment CA: a gateway and the server
talk through a listener that requires client certificates; a wrong CA, an expired broker
certificate and a name the certificate does not carry each fail with a message naming the
reason and the file, said once per reconnect series while the attempts go on."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gridsense_devtools.http import login, try_http_json
from gridsense_devtools.ports import free_port
from gridsense_devtools.processes import Procs, async_wait_until, wait_until
from gridsense_devtools.server_process import start_server
from gridsense_devtools.services import InfluxDB, Mosquitto, TlsListener
from gridsense_protocol import Kind
from gridsense_server.acks import InboundMessage
from gridsense_server.config import MqttConfig, MqttTlsConfig
from gridsense_server.counters import Counters
from gridsense_server.ingest.bridge import MqttBridge
from gridsense_server.ingest.handoff import Handoff
from gridsense_server.pki import DeploymentCA

POINTS = {"gw-tls.boiler": ("gw-tls", "g01-a")}


@dataclass
class Pki:
    ca: DeploymentCA
    other_ca: DeploymentCA  # a CA the broker's certificate does not chain to


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    ca, _ = DeploymentCA.init(tmp_path / "ca")
    other, _ = DeploymentCA.init(tmp_path / "other-ca", common_name="someone else's CA")
    return Pki(ca, other)


def tls_broker(tmp_path: Path, pki: Pki, *, name: str = "broker", dns: tuple[str, ...] = (
        "localhost",), ips: tuple[str, ...] = ("127.0.0.1",), expired: bool = False,
        require_certificate: bool = False) -> Mosquitto:
    not_after = datetime.now(UTC) - timedelta(days=1) if expired else None
    cert = pki.ca.issue_server(name, dns=list(dns), ips=list(ips), not_after=not_after)
    listener = TlsListener(pki.ca.cert_file, cert.cert_file, cert.key_file,
                           require_certificate=require_certificate)
    return Mosquitto(tmp_path / f"mosquitto-{name}", free_port(), tls=listener).start()


def bridge_to(broker: Mosquitto, tls: MqttTlsConfig, host: str = "127.0.0.1") -> MqttBridge:
    assert broker.tls is not None
    config = MqttConfig(host=host, port=broker.tls.port, tls=tls)
    return MqttBridge(config, Counters(), client_id="tls-test", kinds=(Kind.TELEMETRY,))


async def _subscribes(bridge: MqttBridge) -> None:
    """The bridge connects over TLS and the broker takes its subscriptions."""
    bridge.start(Handoff(10, asyncio.get_running_loop()))
    try:
        await async_wait_until(bridge.subscribed.is_set, 20, "subscribed over TLS")
    finally:
        bridge.stop()


async def _failures(bridge: MqttBridge, caplog: pytest.LogCaptureFixture,
                    attempts: int = 3) -> list[str]:
    """Run the bridge until it has failed ``attempts`` times; the tls failures it logged."""
    handoff: Handoff[InboundMessage] = Handoff(10, asyncio.get_running_loop())
    with caplog.at_level(logging.WARNING, logger="gridsense_server"):
        bridge.start(handoff)
        try:
            await async_wait_until(
                lambda: bridge.counters.get("mqtt.tls_failures") >= attempts, 30,
                f"{attempts} failed TLS attempts")
            assert not bridge.connected.is_set()
        finally:
            bridge.stop()
    return [r.getMessage() for r in caplog.records if "mqtt_tls_failed" in r.getMessage()]


async def test_a_wrong_ca_is_named_once_and_the_attempts_go_on(
    tmp_path: Path, pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    broker = tls_broker(tmp_path, pki)
    try:
        bridge = bridge_to(broker, MqttTlsConfig(ca_file=pki.other_ca.cert_file))
        logged = await _failures(bridge, caplog)
    finally:
        broker.stop()
    assert len(logged) == 1, logged  # once per reconnect series, not once per attempt
    assert "not issued by the CA in" in logged[0] or "ends at a CA other" in logged[0]
    assert str(pki.other_ca.cert_file) in logged[0]


async def test_an_expired_broker_certificate_says_so(
    tmp_path: Path, pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    broker = tls_broker(tmp_path, pki, expired=True)
    try:
        bridge = bridge_to(broker, MqttTlsConfig(ca_file=pki.ca.cert_file))
        logged = await _failures(bridge, caplog, attempts=2)
    finally:
        broker.stop()
    assert len(logged) == 1 and "certificate has expired" in logged[0], logged


async def test_a_name_the_certificate_does_not_carry_fails_and_server_name_fixes_it(
    tmp_path: Path, pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    broker = tls_broker(tmp_path, pki, dns=("broker.example",), ips=())
    try:
        bridge = bridge_to(broker, MqttTlsConfig(ca_file=pki.ca.cert_file))
        logged = await _failures(bridge, caplog, attempts=2)
        assert len(logged) == 1 and "does not name '127.0.0.1'" in logged[0], logged
        # Connecting by address, checking the name the certificate carries.
        named = bridge_to(broker, MqttTlsConfig(ca_file=pki.ca.cert_file,
                                                server_name="broker.example"))
        await _subscribes(named)
    finally:
        broker.stop()


def test_a_gateway_and_the_server_talk_over_tls_with_client_certificates(
    tmp_path: Path, pki: Pki, influx: tuple[InfluxDB, str], procs: Procs
) -> None:
    broker = tls_broker(tmp_path, pki, require_certificate=True)
    assert broker.tls is not None
    server_cert = pki.ca.issue_client("server")
    gateway_cert = pki.ca.issue_client("gw-tls")
    influx_server, db = influx
    try:
        mqtt_tls = (f"{{ca_file: {pki.ca.cert_file}, cert_file: {server_cert.cert_file}, "
                    f"key_file: {server_cert.key_file}}}")
        _server, base, _config = start_server(procs, tmp_path, broker.tls.port,
                                              influx_server.url, db, POINTS, mqtt_tls)
        gateway_config = tmp_path / "gateway.yaml"
        gateway_config.write_text(f"""
gateway: {{id: gw-tls, state_dir: {tmp_path / "edge-state"}}}
mqtt: {{host: localhost, port: {broker.tls.port}, keepalive_s: 10,
       tls: {{ca_file: {pki.ca.cert_file}, cert_file: {gateway_cert.cert_file},
             key_file: {gateway_cert.key_file}}}}}
health: {{interval_s: 1}}
""")
        procs.start("edge", "gridsense-edge", "run", "--config", str(gateway_config))
        control = login(base, "control")

        def gateway() -> dict | None:
            views = try_http_json("GET", f"{base}/api/v1/gateways", control) or []
            found = [g for g in views if g["id"] == "gw-tls"]
            return found[0] if found and found[0]["state"] == "online" and \
                found[0]["health"] else None

        try:
            view = wait_until(gateway, 60, "gw-tls online with a health message over TLS")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{procs.logs()}") from None
        assert view["seq_gaps"] == 0
        assert "tls=True" in procs.logs()
    finally:
        procs.stop_all()
        broker.stop()


@pytest.mark.parametrize("case", ["wrong_ca", "expired_client_certificate"])
def test_a_gateway_says_why_tls_fails_once_and_keeps_trying(
    tmp_path: Path, pki: Pki, procs: Procs, case: str
) -> None:
    expired = case == "expired_client_certificate"
    broker = tls_broker(tmp_path, pki, require_certificate=expired)
    assert broker.tls is not None
    if expired:
        # Under TLS 1.3 the broker refuses it after the handshake: the alert comes on a read.
        cert = pki.ca.issue_client("gw-tls", not_after=datetime.now(UTC) - timedelta(days=1))
        tls = (f"{{ca_file: {pki.ca.cert_file}, cert_file: {cert.cert_file}, "
               f"key_file: {cert.key_file}}}")
        expected = [f"the broker refused our certificate {cert.cert_file}: it has expired"]
    else:
        tls = f"{{ca_file: {pki.other_ca.cert_file}}}"
        expected = ["not issued by the CA in", "ends at a CA other"]
    try:
        gateway_config = tmp_path / "gateway.yaml"
        gateway_config.write_text(f"""
gateway: {{id: gw-tls, state_dir: {tmp_path / "edge-state"}}}
mqtt: {{host: localhost, port: {broker.tls.port}, reconnect_max_s: 1, tls: {tls}}}
""")
        edge = procs.start("edge", "gridsense-edge", "run", "--config", str(gateway_config))
        wait_until(lambda: "mqtt_tls_failed" in procs.logs(), 30, "the TLS failure logged")
        wait_until(lambda: _refused_handshakes(broker.log_path.read_text()) >= 3, 30,
                   "three handshakes refused by the broker")
        assert edge.alive()
        failures = [line for line in procs.logs().splitlines() if "mqtt_tls_failed" in line]
        assert len(failures) == 1, failures
        assert any(text in failures[0] for text in expected), failures
    finally:
        procs.stop_all()
        broker.stop()


def _refused_handshakes(broker_log: str) -> int:
    """Mosquitto logs a refused TLS handshake in one of two forms, depending on when it
    notices: an ``OpenSSL Error`` line, or ``Client connection from … failed: …``."""
    return sum(1 for line in broker_log.splitlines()
               if "OpenSSL Error" in line
               or ("Client connection from" in line and " failed: " in line))


async def test_an_expired_client_certificate_is_named_by_the_server(
    tmp_path: Path, pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    broker = tls_broker(tmp_path, pki, require_certificate=True)
    cert = pki.ca.issue_client("server", not_after=datetime.now(UTC) - timedelta(days=1))
    try:
        bridge = bridge_to(broker, MqttTlsConfig(ca_file=pki.ca.cert_file,
                                                 cert_file=cert.cert_file,
                                                 key_file=cert.key_file))
        logged = await _failures(bridge, caplog)
    finally:
        broker.stop()
    assert len(logged) == 1, logged
    assert f"refused our certificate {cert.cert_file}: it has expired" in logged[0]
