"""What the server announces back to a gateway as settled: every settled message with a seq,
refused ones included when their payload names one; never a status (its seq is another
message's); batched per gateway, split at the message's limit, kept when the bridge is full."""

from __future__ import annotations

from datetime import UTC, datetime

from gridsense_protocol import (
    GatewayState,
    Kind,
    Reading,
    Settled,
    Status,
    Telemetry,
    decode,
    encode,
    tag_snapshot,
    topic_for,
)
from gridsense_protocol.messages import MAX_SETTLED_RANGES
from gridsense_server.acks import InboundMessage
from gridsense_server.counters import Counters
from gridsense_server.ingest.settled_acks import SettledAcks, settled_sequence

TS = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def telemetry(gateway: str, seq: int) -> InboundMessage:
    message = Telemetry(gateway=gateway, seq=seq, ts=TS, readings=[
        Reading(point=f"{gateway}.t1", metric="temperature", value=20.0, unit="°C", ts=TS)])
    return InboundMessage(message, None, topic_for(gateway, Kind.TELEMETRY), encode(message))


def refused(topic: str, payload: bytes) -> InboundMessage:
    return InboundMessage(None, None, topic, payload, reason="invalid: test")


class Bridge:
    def __init__(self, room: int = 1_000_000) -> None:
        self.room = room
        self.sent: list[tuple[str, Settled]] = []

    def publish(self, topic: str, payload: bytes) -> bool:
        if len(self.sent) >= self.room:
            return False
        message = decode(topic, payload)
        assert isinstance(message, Settled)
        self.sent.append((topic, message))
        return True


def test_which_messages_name_a_seq() -> None:
    assert settled_sequence(telemetry("gw-01", 7)) == ("gw-01", 7)
    # Refused at decode: the seq is read leniently, the gateway taken from the topic.
    bad = b'{"v": 1, "gateway": "gw-02", "seq": 9, "ts": "not a time"}'
    assert settled_sequence(refused(topic_for("gw-01", Kind.TELEMETRY), bad)) == ("gw-01", 9)
    jpeg = tag_snapshot(b"\xff\xd8\xff\xe0garbage", 12)
    snapshot_topic = topic_for("gw-01", Kind.SNAPSHOT, "01KWQ3S3VZ7T8C9W1XW6J8Q2AR")
    assert settled_sequence(refused(snapshot_topic, jpeg)) == ("gw-01", 12)
    for payload in (b"not json", b'{"seq": -1}', b'{"seq": true}', b'{"seq": 9223372036854775808}',
                    b"[1, 2]"):
        assert settled_sequence(refused(topic_for("gw-01", Kind.HEALTH), payload)) is None
    assert settled_sequence(refused("elsewhere/gw-01/telemetry", b'{"seq": 3}')) is None
    # A status repeats the latest seq the gateway assigned: naming it would confirm a message
    # the server may never have received — decoded or refused.
    status = Status(gateway="gw-01", seq=40, ts=TS, state=GatewayState.ONLINE)
    status_topic = topic_for("gw-01", Kind.STATUS)
    assert settled_sequence(InboundMessage(status, None, status_topic, encode(status))) is None
    assert settled_sequence(refused(status_topic, b'{"seq": 40}')) is None


def test_settled_seqs_go_out_per_gateway_as_merged_ranges() -> None:
    bridge, counters = Bridge(), Counters()
    acks = SettledAcks(bridge.publish, counters)
    for seq in (1, 2, 3, 5, 4, 9):
        acks.add(telemetry("gw-01", seq))
    acks.add(telemetry("gw-02", 40))
    acks.add(refused(topic_for("gw-02", Kind.INCIDENT), b'{"seq": 41}'))
    acks.flush()
    assert [(topic, m.gateway, m.ranges) for topic, m in bridge.sent] == [
        ("gridsense/v1/gw-01/ack", "gw-01", [(1, 5), (9, 9)]),
        ("gridsense/v1/gw-02/ack", "gw-02", [(40, 41)]),
    ]
    acks.flush()  # nothing new: nothing sent
    assert len(bridge.sent) == 2
    acks.add(telemetry("gw-01", 9))  # settled again (a re-send): named again
    acks.flush()
    assert bridge.sent[-1][1].ranges == [(9, 9)]
    assert counters.get("acks.published") == 3


def test_long_lists_are_split_and_a_full_bridge_keeps_the_rest() -> None:
    bridge, counters = Bridge(room=1), Counters()
    acks = SettledAcks(bridge.publish, counters)
    for seq in range(0, 2 * (MAX_SETTLED_RANGES + 10), 2):  # every other seq: one range each
        acks.add(telemetry("gw-01", seq))
    acks.flush()
    assert len(bridge.sent) == 1 and len(bridge.sent[0][1].ranges) == MAX_SETTLED_RANGES
    assert counters.get("acks.publish_deferred") == 1
    bridge.room = 10
    acks.flush()  # the rest, kept for the next round
    assert len(bridge.sent) == 2 and len(bridge.sent[1][1].ranges) == 10
    assert bridge.sent[1][1].ranges[0][0] == 2 * MAX_SETTLED_RANGES
