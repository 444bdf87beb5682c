"""Ingest from a three-node NATS cluster: a gateway speaks MQTT 3.1.1 to one node, two server
consumers (one durable JetStream consumer) share its messages, each taken once; a message is
acknowledged only when the server says so — one taken by a consumer that stops without
acknowledging goes to the other; ``Settled`` published by the server reaches the gateway's MQTT
subscription on another node."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import nats
import paho.mqtt.client as mqtt
from server_helpers import EdgePublisher, Watcher, async_wait_until

from gridsense_devtools.nats_cluster import NatsCluster
from gridsense_edge.transport.probe import ProbeOutcome, probe_broker
from gridsense_protocol import Kind, Telemetry, encode, topic_for
from gridsense_server.acks import InboundMessage
from gridsense_server.config import NatsConfig
from gridsense_server.counters import Counters
from gridsense_server.ingest.handoff import Handoff
from gridsense_server.ingest.nats_source import NatsBridge
from gridsense_server.ingest.nats_subjects import stream_layout, subject_to_topic, topic_to_subject
from gridsense_server.ingest.sources import TELEMETRY_KINDS

T0 = datetime(2024, 5, 1, 8, 0, 0, tzinfo=UTC)
STREAM = "GRIDSENSE_TELEMETRY"


def test_topics_and_subjects_convert_as_nats_server_does() -> None:
    assert topic_to_subject("gridsense/v1/gw-01/telemetry") == "gridsense.v1.gw-01.telemetry"
    assert topic_to_subject("gridsense/v1/gw.01/ack") == "gridsense.v1.gw//01.ack"
    assert topic_to_subject("gridsense/v1/+/snapshot/+") == "gridsense.v1.*.snapshot.*"
    assert subject_to_topic("gridsense.v1.gw//01.cmd.result") == "gridsense/v1/gw.01/cmd/result"


async def leader_alive(cluster: NatsCluster, url: str) -> bool:
    client = await nats.connect(url, connect_timeout=2, allow_reconnect=False)
    try:
        info = await client.jetstream().stream_info(STREAM)
    except Exception:
        return False
    finally:
        await client.close()
    leader = info.cluster.leader if info.cluster is not None else None
    return any(node.name == leader and node.running for node in cluster.nodes)


def resend_until_acknowledged(edge: EdgePublisher, message: Telemetry) -> int:
    """As a gateway does: a message without PUBACK (the cluster still electing leaders after a
    node's loss) is sent again; the server's dedup makes the copy harmless."""
    for _ in range(6):
        info = edge.client.publish(topic_for(message.gateway, message.kind), encode(message),
                                   qos=1)
        info.wait_for_publish(10)
        if info.is_published():
            return message.seq
    raise AssertionError(f"seq {message.seq} never acknowledged by the cluster")


def consumer(cluster: NatsCluster, counters: Counters, name: str) -> NatsBridge:
    config = NatsConfig(urls=cluster.urls, ack_wait_s=2, replicas=3)
    return NatsBridge(config, counters, client_id=name, window=100, layout=stream_layout(
        config.stream_prefix, config.durable, "telemetry", TELEMETRY_KINDS))


async def take(handoff: Handoff[InboundMessage], wanted: int,
               into: list[InboundMessage]) -> None:
    while len(into) < wanted:
        into.extend(await asyncio.wait_for(handoff.get_batch(100), 30))


async def test_a_message_leaves_the_stream_only_when_acknowledged(
    nats_cluster: NatsCluster,
) -> None:
    """Consumer A takes the gateway's first messages and stops without acknowledging them (as
    a server killed before they were durable); consumer B of the same durable consumer gets
    them again, with the messages sent after, each once; what B acknowledges is gone."""
    loop = asyncio.get_running_loop()
    counters = Counters()
    a, b = (consumer(nats_cluster, counters, f"server-{name}") for name in "ab")
    to_a: Handoff[InboundMessage] = Handoff(1000, loop)
    to_b: Handoff[InboundMessage] = Handoff(1000, loop)
    node = nats_cluster.nodes
    edge = EdgePublisher(node[0].mqtt_port, protocol=mqtt.MQTTv311)
    watcher = Watcher(node[2].mqtt_port, topic_for("gw-01", Kind.ACK),
                      protocol=mqtt.MQTTv311)
    try:
        a.start(to_a)
        await async_wait_until(a.subscribed.is_set, 30, "consumer A reading")
        early = [edge.publish(edge.telemetry([("gw-01.t", "temperature", float(i), T0)])).seq
                 for i in range(20)]
        taken_by_a: list[InboundMessage] = []
        await take(to_a, len(early), taken_by_a)
        assert sorted(m.sequence[1] for m in taken_by_a if m.sequence) == early
        assert all(isinstance(m.decoded, Telemetry) for m in taken_by_a)
        assert {m.topic for m in taken_by_a} == {"gridsense/v1/gw-01/telemetry"}
        await asyncio.to_thread(a.stop)  # nothing acknowledged

        b.start(to_b)
        await async_wait_until(b.subscribed.is_set, 30, "consumer B reading")
        late = [edge.publish(edge.telemetry([("gw-01.t", "temperature", float(i), T0)])).seq
                for i in range(20)]
        taken_by_b: list[InboundMessage] = []
        while len({m.sequence for m in taken_by_b}) < len(early) + len(late):
            batch = await asyncio.wait_for(to_b.get_batch(100), 30)
            b.ack([m.token for m in batch if m.token is not None])  # before ack_wait ends
            taken_by_b.extend(batch)
        seqs = [m.sequence[1] for m in taken_by_b if m.sequence]
        assert sorted(seqs) == early + late, "each message once, A's again after ack_wait"
        assert counters.get("nats.redeliveries") >= len(early)
        await async_wait_until(lambda: counters.get("nats.acks") >= len(seqs), 20, "acks sent")
        await asyncio.sleep(3)  # past ack_wait: an unacknowledged message would come again
        assert len(to_b) == 0, "acknowledged messages are not delivered again"

        # Settled back to the gateway, through another node, to its MQTT 3.1.1 subscription.
        assert await asyncio.to_thread(watcher.subscribed.wait, 20)
        assert b.publish(topic_for("gw-01", Kind.ACK), b'{"settled": "1-40"}')
        assert await asyncio.to_thread(watcher.arrived.wait, 20), "Settled reached the gateway"
        assert watcher.payloads == [b'{"settled": "1-40"}']
    finally:
        edge.close()
        watcher.close()
        await asyncio.to_thread(a.stop)
        await asyncio.to_thread(b.stop)


def test_the_gateways_broker_probe_speaks_the_configured_mqtt_version(
    nats_cluster: NatsCluster,
) -> None:
    """nats-server refuses MQTT 5 at CONNECT; the gateway configured for 3.1.1 gets in."""
    port = nats_cluster.nodes[1].mqtt_port
    refused = probe_broker("127.0.0.1", port, "gw-01", None, None, protocol="5")
    assert refused.outcome is ProbeOutcome.REFUSED, refused
    accepted = probe_broker("127.0.0.1", port, "gw-01", None, None, protocol="3.1.1")
    assert accepted.outcome is ProbeOutcome.OK, accepted


async def test_the_consumer_moves_to_another_node_when_its_node_is_killed(
    nats_cluster: NatsCluster,
) -> None:
    """kill -9 of the node the consumer is connected to: it reconnects to another (the stream
    has three replicas) and takes what the gateway sends before and after, each once."""
    counters = Counters()
    bridge = consumer(nats_cluster, counters, "server-f")
    handoff: Handoff[InboundMessage] = Handoff(1000, asyncio.get_running_loop())
    bridge.start(handoff)
    edge: EdgePublisher | None = None
    try:
        await async_wait_until(bridge.subscribed.is_set, 30, "the consumer reading")
        ports = [node.port for node in nats_cluster.nodes]
        connected = ports.index(int(bridge.server.rsplit(":", 1)[1]))
        other = nats_cluster.nodes[(connected + 1) % len(ports)]
        edge = EdgePublisher(other.mqtt_port, protocol=mqtt.MQTTv311)
        sent = [edge.publish(edge.telemetry([("gw-01.t", "temperature", 1.0, T0)])).seq
                for _ in range(10)]
        taken: list[InboundMessage] = []

        async def take_and_ack(count: int) -> None:
            while len({m.sequence for m in taken}) < count:
                batch = await asyncio.wait_for(handoff.get_batch(100), 60)
                bridge.ack([m.token for m in batch if m.token is not None])
                taken.extend(batch)

        await take_and_ack(len(sent))
        nats_cluster.kill(connected)
        # The stream (and MQTT's own) elect new leaders among the two left before the
        # gateway's next PUBACK: a real gateway keeps re-sending meanwhile, this one waits.
        await async_wait_until(lambda: leader_alive(nats_cluster, other.url), 60,
                               "the telemetry stream led by a node alive")
        sent += [resend_until_acknowledged(edge, edge.telemetry(
            [("gw-01.t", "temperature", 2.0, T0)])) for _ in range(10)]
        await take_and_ack(len(sent))
        assert sorted({m.sequence[1] for m in taken if m.sequence}) == sent
        assert bridge.server and int(bridge.server.rsplit(":", 1)[1]) != ports[connected]
    finally:
        if edge is not None:
            edge.close()
        await asyncio.to_thread(bridge.stop)
