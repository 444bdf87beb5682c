"""The wire contract: round trips, and every kind of bad input named precisely."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gridsense_protocol import (
    MAX_PAYLOAD_BYTES,
    AlarmState,
    CommandResult,
    DriverHealth,
    DriverState,
    GatewayState,
    Health,
    Incident,
    Kind,
    ProtocolError,
    Reading,
    Severity,
    Snapshot,
    Status,
    Telemetry,
    decode,
    encode,
    new_event_id,
    topic_for,
)

T0 = datetime(2026, 11, 25, 4, 0, tzinfo=UTC)


def telemetry(n: int = 1, gateway: str = "gw-01") -> Telemetry:
    readings = [
        Reading(
            point=f"{gateway}.p{i}",
            metric="temperature",
            value=20 + i / 10,
            unit="°C",
            ts=T0 + timedelta(seconds=i),
        )
        for i in range(n)
    ]
    return Telemetry(gateway=gateway, seq=7, ts=T0, readings=readings)


def test_every_message_kind_round_trips() -> None:
    messages = [
        telemetry(3),
        Incident(
            gateway="gw-01",
            seq=8,
            ts=T0,
            point="gw-01.p1",
            type="over_temperature",
            severity=Severity.MAJOR,
            value=71.5,
            threshold=60,
            unit="°C",
            message="boiler room above 60 °C",
        ),
        Status(gateway="gw-01", seq=9, ts=T0, state=GatewayState.ONLINE, agent_version="0.1.0"),
        Health(
            gateway="gw-01",
            seq=10,
            ts=T0,
            uptime_s=12.5,
            cpu_percent=1.5,
            memory_rss_bytes=30_000_000,
            disk_free_bytes=10**9,
            drivers={"rs485-0": DriverHealth(state=DriverState.OK, counters={"reads": 3})},
        ),
        CommandResult(gateway="gw-01", seq=11, ts=T0, command_id=new_event_id(), ok=True),
    ]
    for message in messages:
        decoded = decode(topic_for("gw-01", message.kind), encode(message))
        assert decoded == message


def test_envelope_carries_the_contract_fields() -> None:
    body = json.loads(encode(telemetry()))
    assert {"v", "gateway", "id", "seq", "ts", "backfill"} <= body.keys()
    assert body["v"] == 1 and body["backfill"] is False
    assert len(body["id"]) == 26


def test_device_time_is_kept_exactly() -> None:
    decoded = decode("gridsense/v1/gw-01/telemetry", encode(telemetry(2)))
    assert isinstance(decoded, Telemetry)
    assert decoded.readings[1].ts == T0 + timedelta(seconds=1)


@pytest.mark.parametrize(
    ("mutate", "field", "reason_part"),
    [
        (lambda b: {**b, "seq": -1}, "seq", "greater than or equal to 0"),
        (lambda b: {**b, "v": 2}, "v", "1"),
        (lambda b: {k: v for k, v in b.items() if k != "ts"}, "ts", "required"),
        (lambda b: {**b, "ts": "2026-11-25T04:00:00"}, "ts", "timezone"),
        (lambda b: {**b, "id": "not-a-ulid"}, "id", "pattern"),
        (lambda b: {**b, "readings": []}, "readings", "at least 1"),
        (
            lambda b: {**b, "readings": [{**b["readings"][0], "value": "hot"}]},
            "readings[0].value",
            "number",
        ),
        (
            lambda b: {**b, "readings": [{**b["readings"][0], "point": "bad point!"}]},
            "readings[0].point",
            "pattern",
        ),
    ],
)
def test_invalid_field_is_named(mutate, field: str, reason_part: str) -> None:
    body = json.loads(encode(telemetry()))
    with pytest.raises(ProtocolError) as info:
        decode("gridsense/v1/gw-01/telemetry", json.dumps(mutate(body)).encode())
    assert info.value.field == field
    assert reason_part in info.value.reason
    assert info.value.gateway == "gw-01"
    assert field in str(info.value)


def test_non_finite_values_are_refused() -> None:
    raw = encode(telemetry()).replace(b'"value":20.0', b'"value":NaN')
    with pytest.raises(ProtocolError) as info:
        decode("gridsense/v1/gw-01/telemetry", raw)
    assert info.value.field in {"", "readings[0].value"}


def test_malformed_json_is_named() -> None:
    with pytest.raises(ProtocolError) as info:
        decode("gridsense/v1/gw-01/telemetry", b'{"v": 1, ')
    assert info.value.field == ""
    assert "not valid JSON" in info.value.reason


def test_oversized_payload_is_refused_before_parsing() -> None:
    payload = b"{" + b" " * MAX_PAYLOAD_BYTES + b"}"
    with pytest.raises(ProtocolError) as info:
        decode("gridsense/v1/gw-01/telemetry", payload)
    assert "limit" in info.value.reason


def test_gateway_must_match_topic() -> None:
    with pytest.raises(ProtocolError) as info:
        decode("gridsense/v1/gw-02/telemetry", encode(telemetry(gateway="gw-01")))
    assert info.value.field == "gateway"
    assert "gw-01" in info.value.reason and "gw-02" in info.value.reason


@pytest.mark.parametrize(
    "topic",
    [
        "other/v1/gw-01/telemetry",
        "gridsense/v2/gw-01/telemetry",
        "gridsense/v1/gw-01/nonsense",
        "gridsense/v1/bad id/telemetry",
        "gridsense/v1/gw-01",
    ],
)
def test_bad_topics_are_refused(topic: str) -> None:
    with pytest.raises(ProtocolError):
        decode(topic, encode(telemetry()))


def test_unknown_fields_are_ignored_for_forward_compatibility() -> None:
    body = json.loads(encode(telemetry()))
    body["added_in_a_later_minor"] = {"x": 1}
    assert isinstance(decode("gridsense/v1/gw-01/telemetry", json.dumps(body).encode()), Telemetry)


def test_incident_defaults_to_active() -> None:
    incident = Incident(
        gateway="gw-01",
        seq=1,
        ts=T0,
        point="gw-01.p1",
        type="rapid_rise",
        severity=Severity.CRITICAL,
    )
    decoded = decode(topic_for("gw-01", Kind.INCIDENT), encode(incident))
    assert isinstance(decoded, Incident) and decoded.state is AlarmState.ACTIVE


def test_snapshot_must_be_a_bounded_jpeg() -> None:
    event = new_event_id()
    topic = topic_for("gw-01", Kind.SNAPSHOT, event)
    snap = decode(topic, b"\xff\xd8\xff\xe0" + b"0" * 100)
    assert isinstance(snap, Snapshot) and snap.event == event
    with pytest.raises(ProtocolError, match="not a JPEG"):
        decode(topic, b"\x89PNG....")


@given(st.binary(max_size=512))
def test_arbitrary_bytes_never_escape_as_anything_but_protocol_error(payload: bytes) -> None:
    for kind in (Kind.TELEMETRY, Kind.INCIDENT, Kind.STATUS, Kind.HEALTH):
        with contextlib.suppress(ProtocolError):
            decode(topic_for("gw-01", kind), payload)


@pytest.mark.parametrize(("change", "field"), [
    ({"seq": 2**63}, "seq"),
    ({"ts": "9999-01-01T00:00:00Z"}, "ts"),
    ({"ts": "1970-01-01T00:00:00Z"}, "ts"),
])
def test_integers_and_times_are_bounded_to_what_the_stores_hold(change: dict, field: str) -> None:
    from gridsense_protocol import INT64_MAX, Telemetry, utc_now
    message = Telemetry(gateway="gw-01", seq=INT64_MAX, ts=utc_now(), readings=[
        {"point": "gw-01.t", "metric": "temperature", "value": 1.0, "unit": "C", "ts": utc_now()}])
    topic = "gridsense/v1/gw-01/telemetry"
    assert decode(topic, encode(message)).seq == INT64_MAX
    body = json.loads(encode(message)) | change
    with pytest.raises(ProtocolError) as caught:
        decode(topic, json.dumps(body).encode())
    assert caught.value.field == field


def test_a_snapshot_seq_beyond_64_bits_is_not_taken() -> None:
    from gridsense_protocol import snapshot_seq, tag_snapshot
    assert snapshot_seq(tag_snapshot(b"\xff\xd8\xff\xe0", 2**63 - 1)) == 2**63 - 1
    assert snapshot_seq(tag_snapshot(b"\xff\xd8\xff\xe0", 2**63)) is None
