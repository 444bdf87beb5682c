"""The bridge's paho client reads ahead and takes plain PUBLISHes past paho's per-message
objects: against a real broker, a burst of messages — QoS 1 and 0, with and without MQTT 5
properties, one larger than a read chunk — arrives whole, in order, with the right tokens; and
the PUBACKs it sends in one write acknowledge exactly the messages named, no more."""

from __future__ import annotations

import asyncio

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from server_helpers import async_wait_until

from gridsense_devtools.services import Mosquitto
from gridsense_protocol import Kind, Reading, Telemetry, encode, topic_for, utc_now
from gridsense_server.acks import InboundMessage
from gridsense_server.config import MqttConfig
from gridsense_server.counters import Counters
from gridsense_server.ingest.bridge import MqttBridge
from gridsense_server.ingest.handoff import Handoff
from gridsense_server.ingest.mqtt_client import READ_CHUNK

GATEWAY = "gw-01"
TOPIC = topic_for(GATEWAY, Kind.TELEMETRY)


def _telemetry(seq: int, readings: int = 1) -> bytes:
    now = utc_now()
    return encode(Telemetry(gateway=GATEWAY, seq=seq, ts=now, readings=[
        Reading(point=f"{GATEWAY}.p{r:04d}", metric="temperature", value=20.0 + r % 7,
                unit="°C", ts=now) for r in range(readings)]))


def _publish_all(port: int, sent: list[tuple[bytes, int, bool]]) -> None:
    """(payload, qos, with properties) each, as fast as paho sends them; waits for the broker."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=GATEWAY, protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(1000)
    client.connect("127.0.0.1", port)
    client.loop_start()
    infos = []
    for payload, qos, with_properties in sent:
        properties = None
        if with_properties:
            properties = Properties(PacketTypes.PUBLISH)
            properties.MessageExpiryInterval = 3600
            properties.UserProperty = ("origin", "test")
        infos.append(client.publish(TOPIC, payload, qos=qos, properties=properties))
    for info in infos:
        info.wait_for_publish(20)
    client.disconnect()
    client.loop_stop()


async def _started(port: int, counters: Counters) -> tuple[MqttBridge, Handoff[InboundMessage]]:
    """A bridge on the test's session (the same client id each time: a restart resumes it)."""
    bridge = MqttBridge(MqttConfig(host="127.0.0.1", port=port), counters,
                        client_id="ingest-client-test", kinds=(Kind.TELEMETRY,))
    handoff: Handoff[InboundMessage] = Handoff(1000, asyncio.get_running_loop())
    bridge.start(handoff)
    await async_wait_until(bridge.subscribed.is_set, 20, "subscribed")
    return bridge, handoff


async def _receive(handoff: Handoff[InboundMessage], count: int) -> list[InboundMessage]:
    received: list[InboundMessage] = []
    while len(received) < count:
        received += await asyncio.wait_for(handoff.get_batch(1000), 20)
    return received


async def test_a_burst_arrives_whole_in_order_whatever_path_each_message_takes(
    mosquitto: Mosquitto,
) -> None:
    big = _telemetry(10_000, readings=900)
    assert len(big) > READ_CHUNK  # parsed across several reads
    sent: list[tuple[bytes, int, bool]] = []
    for seq in range(1, 401):
        payload = big if seq == 200 else _telemetry(seq)
        sent.append((payload, 0 if seq % 50 == 0 else 1, seq % 7 == 0))
    sent.append((b"\xff not json", 1, False))  # refused, but handed on like the rest
    bridge, handoff = await _started(mosquitto.port, Counters())
    try:
        await asyncio.to_thread(_publish_all, mosquitto.port, sent)
        received = await _receive(handoff, len(sent))
        assert [m.payload for m in received] == [payload for payload, _, _ in sent]
        assert all(m.topic == TOPIC for m in received)
        for message, (_, qos, _) in zip(received, sent, strict=True):
            if qos == 0:
                assert message.token is None
            else:
                assert message.token is not None
                assert message.token[0] == bridge.generation and message.token[2] == 1
        mids = [m.token[1] for m in received if m.token is not None]
        assert len(set(mids)) == len(mids)
        assert received[199].sequence == (GATEWAY, 10_000)
        assert received[-1].decoded is None and received[-1].reason
    finally:
        await asyncio.to_thread(bridge.stop)


async def test_acks_sent_together_acknowledge_exactly_the_messages_named(
    mosquitto: Mosquitto,
) -> None:
    sent = [(_telemetry(seq), 1, seq % 5 == 0) for seq in range(1, 301)]
    counters = Counters()
    first, handoff = await _started(mosquitto.port, counters)
    try:
        await asyncio.to_thread(_publish_all, mosquitto.port, sent)
        received = await _receive(handoff, len(sent))
        acked = received[::2]  # every other one: the rest must come again
        first.ack([m.token for m in acked if m.token is not None])
        await async_wait_until(lambda: counters.get("mqtt.acks") == len(acked), 20, "acks sent")
    finally:
        await asyncio.to_thread(first.stop)
    second, again = await _started(mosquitto.port, Counters())  # the same session, resumed
    try:
        redelivered = await _receive(again, len(sent) - len(acked))
        assert [m.payload for m in redelivered] == [m.payload for m in received[1::2]]
        await asyncio.sleep(1.0)  # anything acknowledged coming again would be here by now
        assert len(again) == 0
    finally:
        await asyncio.to_thread(second.stop)
