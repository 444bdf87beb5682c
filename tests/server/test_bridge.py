"""The server's MQTT bridge survives a broker killed and restarted: it reconnects with backoff,
subscribes again, hands on what arrives, and sends what was queued for publishing meanwhile."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from server_helpers import EdgePublisher, Watcher, async_wait_until

from gridsense_devtools.services import Mosquitto
from gridsense_protocol import Kind, Telemetry, topic_for
from gridsense_server.acks import InboundMessage
from gridsense_server.config import MqttConfig
from gridsense_server.counters import Counters
from gridsense_server.ingest.bridge import MqttBridge
from gridsense_server.ingest.handoff import Handoff

T0 = datetime(2024, 5, 1, 8, 0, 0, tzinfo=UTC)


async def test_the_bridge_reconnects_after_the_broker_is_killed_and_sends_what_waited(
    mosquitto: Mosquitto,
) -> None:
    counters = Counters()
    bridge = MqttBridge(MqttConfig(host="127.0.0.1", port=mosquitto.port), counters,
                        client_id="bridge-test", kinds=(Kind.TELEMETRY,))
    handoff: Handoff[InboundMessage] = Handoff(100, asyncio.get_running_loop())
    bridge.start(handoff)
    try:
        await async_wait_until(bridge.subscribed.is_set, 20, "subscribed")
        mosquitto.kill()
        await async_wait_until(lambda: not bridge.connected.is_set(), 20, "loss seen")
        config_topic = topic_for("gw-01", Kind.CONFIG)
        assert bridge.publish(config_topic, b'{"queued": "while the broker was away"}',
                              retain=True)
        mosquitto.start()
        await async_wait_until(bridge.subscribed.is_set, 60, "subscribed again")
        assert counters.get("mqtt.connects") >= 2
        watcher = Watcher(mosquitto.port, config_topic)
        edge = EdgePublisher(mosquitto.port)
        try:
            assert await asyncio.to_thread(watcher.arrived.wait, 20), "queued publication"
            assert watcher.payloads == [b'{"queued": "while the broker was away"}']
            sent = edge.publish(edge.telemetry([("gw-01.boiler", "temperature", 21.0, T0)]))
            [received] = await asyncio.wait_for(handoff.get_batch(10), 20)
            assert isinstance(received.decoded, Telemetry)
            assert received.sequence == ("gw-01", sent.seq)
            assert received.token is not None and received.token[0] == bridge.generation
        finally:
            edge.close()
            watcher.close()
    finally:
        await asyncio.to_thread(bridge.stop)
