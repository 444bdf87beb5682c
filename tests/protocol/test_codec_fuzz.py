"""decode, fuzzed: whatever the topic and bytes, it returns a message within the protocol's
bounds or raises the protocol's own ProtocolError — never another exception."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gridsense_devtools.fuzz_messages import Layout
from gridsense_devtools.fuzz_payloads import FuzzPayload, fuzz_payload, garbage, mutated, valid
from gridsense_protocol import (
    INT64_MAX,
    PREFIX,
    TS_MAX,
    TS_MIN,
    Envelope,
    ProtocolError,
    Snapshot,
    Telemetry,
    decode,
    encode,
    parse_topic,
)

LAYOUT = Layout(gateways={"gw-01": ("gw-01.p0", "boiler-a"), "gw-02": ("gw-02.p0",)},
                unregistered=("gw-x9",))
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
SUFFIXES = ("telemetry", "incident", "status", "health", "cmd/result", "access", "config",
            "cmd", "snapshot/01J0000000000000000000000A", "snapshot", "bogus")
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))


def _check(topic: str, payload: bytes) -> None:
    try:
        message = decode(topic, payload)
    except ProtocolError as exc:
        assert str(exc).startswith(topic[:40])  # names where: the topic, then the field
        return
    assert message.gateway == parse_topic(topic).gateway
    if isinstance(message, Snapshot):
        assert message.seq is None or 0 <= message.seq <= INT64_MAX
        return
    assert isinstance(message, Envelope)
    assert 0 <= message.seq <= INT64_MAX
    assert TS_MIN <= message.ts < TS_MAX
    if isinstance(message, Telemetry):
        assert all(TS_MIN <= r.ts < TS_MAX for r in message.readings)
    # What was accepted encodes to a payload that decodes to the same message.
    assert decode(topic, encode(message)) == message


@FUZZ
@given(gateway=st.sampled_from(("gw-01", "gw 01", "网关", "a" * 65, "")),
       suffix=st.sampled_from(SUFFIXES), payload=st.binary(max_size=4096))
def test_arbitrary_bytes_on_any_topic(gateway: str, suffix: str, payload: bytes) -> None:
    _check(f"{PREFIX}/{gateway}/{suffix}", payload)


@FUZZ
@given(st.text(max_size=80), st.binary(max_size=256))
def test_arbitrary_topics(topic: str, payload: bytes) -> None:
    _check(topic, payload)


@FUZZ
@given(mutated(valid(LAYOUT, NOW)))
def test_mutated_valid_payloads(payload: FuzzPayload) -> None:
    _check(payload.topic, payload.payload)


@FUZZ
@given(garbage(LAYOUT))
def test_garbage(payload: FuzzPayload) -> None:
    _check(payload.topic, payload.payload)


@FUZZ
@given(fuzz_payload(LAYOUT, NOW))
def test_the_ingest_fuzzers_whole_mix(payload: FuzzPayload) -> None:
    _check(payload.topic, payload.payload)


def test_free_form_json_holds_finite_numbers_only() -> None:
    # Found by the property above: NaN inside details was accepted, and came back as null.
    head = (b'{"gateway": "gw-01", "id": "01J00000000000000000000000", "seq": 1, '
            b'"ts": "2026-06-01T12:00:00Z", ')
    for spelled in (b"NaN", b"-Infinity", b"1e999"):
        incident = head + b'"point": "gw-01.p0", "type": "x", "severity": "minor", ' \
            b'"details": {"a": [1, {"b": ' + spelled + b"}]}}"
        result = head + b'"command_id": "01J00000000000000000000000", "ok": true, ' \
            b'"result": {"v": ' + spelled + b"}}"
        for kind, payload in (("incident", incident), ("cmd/result", result)):
            try:
                decode(f"{PREFIX}/gw-01/{kind}", payload)
            except ProtocolError as exc:
                assert exc.field in ("details", "result") and "finite" in exc.reason
            else:
                raise AssertionError(f"{kind} with {spelled!r} was accepted")


def test_health_figures_are_finite() -> None:
    # Found by the property above: ge=0 let Infinity through, into the gateway_health series.
    for spelled in (b"Infinity", b"1e999", b"NaN"):
        payload = (b'{"gateway": "gw-01", "seq": 1, "ts": "2026-06-01T12:00:00Z", '
                   b'"uptime_s": 1.0, "cpu_percent": ' + spelled +
                   b', "memory_rss_bytes": 0, "disk_free_bytes": 0}')
        try:
            decode(f"{PREFIX}/gw-01/health", payload)
        except ProtocolError as exc:
            assert exc.field == "cpu_percent"
        else:
            raise AssertionError(f"cpu_percent {spelled!r} was accepted")


def test_text_holds_no_nul_character() -> None:
    # Found by the fuzzer on PostgreSQL: a NUL in an incident's message, an access event's
    # reason or a command result's error passed the protocol and failed only in the database
    # (SQLite took it), as a DataError dead letter.
    head = (b'{"gateway": "gw-01", "id": "01J00000000000000000000000", "seq": 1, '
            b'"ts": "2026-06-01T12:00:00Z", ')
    cases = {
        ("incident", "message"): head + b'"point": "gw-01.p0", "type": "x", '
                                        b'"severity": "minor", "message": "a\\u0000b"}',
        ("incident", "details"): head + b'"point": "gw-01.p0", "type": "x", '
                                        b'"severity": "minor", "details": {"k\\u0000": 1}}',
        ("cmd/result", "error"): head + b'"command_id": "01J00000000000000000000000", '
                                        b'"ok": false, "error": "\\u0000"}',
    }
    for (kind, field), payload in cases.items():
        try:
            decode(f"{PREFIX}/gw-01/{kind}", payload)
        except ProtocolError as exc:
            assert exc.field == field and "NUL" in exc.reason, (kind, exc.field, exc.reason)
        else:
            raise AssertionError(f"{kind} with NUL in {field} was accepted")
