"""The fixtures themselves: a broker that carries a message, an InfluxDB that stores a point."""

from __future__ import annotations

import threading

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from gridsense_devtools.services import InfluxDB, Mosquitto


def test_mosquitto_fixture_carries_a_message(mosquitto: Mosquitto) -> None:
    got = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="smoke")
    client.on_message = lambda c, u, m: got.set()
    client.connect("127.0.0.1", mosquitto.port)
    client.subscribe("smoke/#", qos=1)
    client.loop_start()
    try:
        client.publish("smoke/x", b"1", qos=1).wait_for_publish(5)
        assert got.wait(5)
    finally:
        client.loop_stop()
        client.disconnect()


def test_influx_fixture_stores_a_point(influx: tuple[InfluxDB, str]) -> None:
    import urllib.request

    server, db = influx
    req = urllib.request.Request(
        f"{server.url}/write?db={db}&precision=s",
        data=b"t,point=a value=1.5 1700000000",
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        assert resp.status == 204
    rows = server.points("SELECT value FROM t", db)
    assert rows == [{"time": 1700000000 * 10**9, "value": 1.5}]
