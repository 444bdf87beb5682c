"""Ingest end to end in-process: a paho publisher → private Mosquitto → the server → InfluxDB."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from server_helpers import EdgePublisher, async_wait_until

from gridsense_devtools.services import InfluxDB, Mosquitto
from gridsense_protocol import MAX_PAYLOAD_BYTES, Kind, encode, topic_for
from gridsense_server.app import ServerApp
from gridsense_server.timeseries.line_protocol import timestamp_ns

T0 = datetime(2024, 5, 1, 8, 0, 0, 250000, tzinfo=UTC)


def _temperature_rows(influx: tuple[InfluxDB, str], point: str) -> list[dict]:
    server, database = influx
    return server.points(
        f"SELECT value, gateway, grid, point FROM temperature WHERE point='{point}'", database
    )


async def test_telemetry_lands_in_influx_with_edge_time_and_grid(
    running_server: ServerApp, edge: EdgePublisher, influx: tuple[InfluxDB, str]
) -> None:
    edge.publish(edge.telemetry([
        ("gw-01.boiler", "temperature", 22.5, T0),
        ("gw-01.boiler", "temperature", 23.0, T0 + timedelta(seconds=1)),
        ("gw-01.boiler", "humidity", 45.0, T0),
        ("gw-01.unregistered", "temperature", 19.0, T0),
    ]))
    rows = await async_wait_until(lambda: _temperature_rows(influx, "gw-01.boiler"),
                                  what="readings in InfluxDB")
    await async_wait_until(lambda: len(_temperature_rows(influx, "gw-01.boiler")) == 2)
    rows = _temperature_rows(influx, "gw-01.boiler")
    assert [(r["time"], r["value"]) for r in rows] == [
        (timestamp_ns(T0), 22.5), (timestamp_ns(T0 + timedelta(seconds=1)), 23.0)
    ]
    assert {(r["gateway"], r["grid"]) for r in rows} == {("gw-01", "g01-a")}
    [unknown] = await async_wait_until(
        lambda: _temperature_rows(influx, "gw-01.unregistered"), what="unregistered point"
    )
    assert unknown["grid"] == "unassigned"
    counters = running_server.counters
    assert counters.get("ingest.readings") == 4
    assert counters.get("influx.unknown_point_readings") == 1


async def test_invalid_messages_are_counted_per_reason_and_ingest_goes_on(
    running_server: ServerApp, edge: EdgePublisher, influx: tuple[InfluxDB, str]
) -> None:
    telemetry_topic = topic_for("gw-01", Kind.TELEMETRY)
    edge.publish_raw(telemetry_topic, b"{not json")
    edge.publish_raw(telemetry_topic, b"{" + b" " * MAX_PAYLOAD_BYTES + b"}")
    impostor = edge.telemetry([("gw-02.boiler", "temperature", 99.0, T0)])
    edge.publish_raw(telemetry_topic, encode(impostor.model_copy(update={"gateway": "gw-02"})))
    bad_field = json.loads(encode(edge.telemetry([("gw-01.boiler", "temperature", 1.0, T0)])))
    bad_field["readings"][0]["ts"] = "yesterday"
    edge.publish_raw(telemetry_topic, json.dumps(bad_field).encode())
    edge.publish_raw(topic_for("gw-01", Kind.INCIDENT), b"[]")

    edge.publish(edge.telemetry([("gw-01.boiler", "temperature", 30.0, T0)]))
    [row] = await async_wait_until(lambda: _temperature_rows(influx, "gw-01.boiler"),
                                   what="the valid message after the bad ones")
    assert row["value"] == 30.0
    counters = running_server.counters
    assert counters.get("ingest.invalid.malformed_json") == 1
    assert counters.get("ingest.invalid.oversized") == 1
    assert counters.get("ingest.invalid.gateway_mismatch") == 1
    assert counters.get("ingest.invalid.bad_field") == 2
    assert counters.get("ingest.received.telemetry") == 1
    assert _temperature_rows(influx, "gw-02.boiler") == []


async def test_the_server_starts_with_the_broker_down_and_connects_when_it_comes_up(
    start_server, mosquitto: Mosquitto, influx: tuple[InfluxDB, str]
) -> None:
    mosquitto.stop()
    app = await start_server(wait_mqtt=False)
    assert not any(b.connected.is_set() for b in app.bridges)
    await async_wait_until(lambda: app.counters.get("mqtt.connect_failures") >= 1)
    mosquitto.start()
    await async_wait_until(app.mqtt_subscribed, 60, "subscribed after broker start")
    publisher = EdgePublisher(mosquitto.port)
    try:
        publisher.publish(publisher.telemetry([("gw-01.boiler", "temperature", 21.0, T0)]))
        await async_wait_until(lambda: _temperature_rows(influx, "gw-01.boiler"))
    finally:
        publisher.close()


async def test_a_broker_restart_is_survived(
    running_server: ServerApp, mosquitto: Mosquitto, influx: tuple[InfluxDB, str]
) -> None:
    bridges = running_server.bridges
    mosquitto.stop()
    await async_wait_until(lambda: not any(b.connected.is_set() for b in bridges),
                           what="disconnect seen")
    mosquitto.start()
    await async_wait_until(running_server.mqtt_subscribed, 60, "re-subscribed after restart")
    publisher = EdgePublisher(mosquitto.port)
    try:
        publisher.publish(publisher.telemetry([("gw-01.boiler", "temperature", 24.0, T0)]))
        await async_wait_until(lambda: _temperature_rows(influx, "gw-01.boiler"))
    finally:
        publisher.close()
    assert running_server.counters.get("mqtt.connects") >= 4  # two sessions, twice each
