"""The broker ACL in firmware_configs/broker/acl.conf: a gateway publishes only under its own
prefix, reads only its own config, and nobody connects without a password."""

from __future__ import annotations

import queue
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from gridsense_devtools.ports import free_port
from gridsense_devtools.services import Mosquitto

USERS = {"gridsense-server": "server-secret", "gw-01": "gw-01-secret", "gw-02": "gw-02-secret"}


@pytest.fixture
def broker(tmp_path: Path, repo_root: Path) -> Iterator[Mosquitto]:
    acl = repo_root / "firmware_configs" / "broker" / "acl.conf"
    running = Mosquitto(tmp_path / "mqtt", free_port(), users=USERS, acl_file=acl).start()
    yield running
    running.stop()


def client(broker: Mosquitto, user: str | None, password: str | None) -> tuple[mqtt.Client, int]:
    c = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=user or "anonymous", protocol=mqtt.MQTTv5
    )
    if user:
        c.username_pw_set(user, password)
    connected: queue.Queue[ReasonCode] = queue.Queue()
    c.on_connect = lambda _c, _u, _f, reason, _p: connected.put(reason)
    c.connect("127.0.0.1", broker.port)
    c.loop_start()
    reason = connected.get(timeout=10)
    return c, reason.value


def test_gateway_cannot_publish_under_another_gateways_prefix(broker: Mosquitto) -> None:
    server, rc = client(broker, "gridsense-server", USERS["gridsense-server"])
    assert rc == 0
    received: queue.Queue[str] = queue.Queue()
    server.on_message = lambda _c, _u, msg: received.put(msg.topic)
    subscribed: queue.Queue[list[ReasonCode]] = queue.Queue()
    server.on_subscribe = lambda _c, _u, _mid, codes, _p: subscribed.put(codes)
    server.subscribe("$share/gridsense-server/gridsense/v1/+/telemetry", qos=1)
    assert all(code.value <= 2 for code in subscribed.get(timeout=10))

    gw01, rc = client(broker, "gw-01", USERS["gw-01"])
    assert rc == 0
    try:
        gw01.publish("gridsense/v1/gw-02/telemetry", b"forged", qos=1).wait_for_publish(10)
        gw01.publish("gridsense/v1/gw-01/telemetry", b"own", qos=1).wait_for_publish(10)
        # Delivery is in order, so once the gateway's own message is here the forged one
        # would have arrived before it.
        assert received.get(timeout=10) == "gridsense/v1/gw-01/telemetry"
        assert received.empty()
    finally:
        for c in (gw01, server):
            c.loop_stop()
            c.disconnect()


def test_gateway_reads_only_its_own_config(broker: Mosquitto) -> None:
    gw01, _ = client(broker, "gw-01", USERS["gw-01"])
    server, _ = client(broker, "gridsense-server", USERS["gridsense-server"])
    received: queue.Queue[str] = queue.Queue()
    gw01.on_message = lambda _c, _u, msg: received.put(msg.topic)
    subscribed: queue.Queue[list[ReasonCode]] = queue.Queue()
    gw01.on_subscribe = lambda _c, _u, _mid, codes, _p: subscribed.put(codes)
    try:
        # Mosquitto grants any subscription and applies read rules at delivery.
        gw01.subscribe("gridsense/v1/+/config", qos=1)
        subscribed.get(timeout=10)
        server.publish("gridsense/v1/gw-02/config", b"theirs", qos=1).wait_for_publish(10)
        server.publish("gridsense/v1/gw-01/config", b"mine", qos=1).wait_for_publish(10)
        assert received.get(timeout=10) == "gridsense/v1/gw-01/config"
        assert received.empty()
    finally:
        for c in (gw01, server):
            c.loop_stop()
            c.disconnect()


@pytest.mark.parametrize(("user", "password"), [(None, None), ("gw-01", "wrong")])
def test_anonymous_and_wrong_password_are_refused(
    broker: Mosquitto, user: str | None, password: str | None
) -> None:
    c, rc = client(broker, user, password)
    c.loop_stop()
    assert rc != 0
