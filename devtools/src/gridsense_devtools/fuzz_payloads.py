"""Hostile MQTT payloads for the ingest path, seeded and reproducible: (a) structurally valid
messages of every kind with extreme values (``fuzz_messages``), (b) mutations of valid ones
(a field dropped, a type swapped, nested garbage, truncation, bit flips, duplicate keys) and
(c) raw garbage (non-UTF-8, non-JSON, deep nesting, oversized). Every payload goes on a topic
the server subscribes to: one it never receives could not be counted.
"""

from __future__ import annotations

import itertools
import json
import random
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from multiprocessing import get_context
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from gridsense_protocol import MAX_PAYLOAD_BYTES, MAX_SNAPSHOT_BYTES, PREFIX, tag_snapshot

from .fuzz_messages import INT_EDGES, KINDS, Layout, Raw, dumps, json_values, nested, ulids

# Gateway segments a topic may carry that are no valid gateway id (the server's subscription
# matches them all): no MQTT wildcards, no control characters, or the broker drops the client.
BAD_GATEWAYS = ("gw 01", "-gw", "g" * 65, "网关-01", "gw!01", "gw-01.")
JPEG_HEAD = b"\xff\xd8\xff\xe0"


@dataclass(frozen=True, slots=True)
class FuzzPayload:
    topic: str
    payload: bytes
    label: str  # family.what, e.g. "valid.telemetry", "mutated.truncate", "garbage.non_utf8"


def _topic(gateway: str, kind: str) -> str:
    return f"{PREFIX}/{gateway}/{kind}"


def gateways(layout: Layout) -> st.SearchStrategy[str]:
    registered = st.sampled_from(sorted(layout.gateways))
    return st.one_of(registered, registered, registered, registered,
                     st.sampled_from(layout.unregistered))


def valid(layout: Layout, now: datetime) -> st.SearchStrategy[tuple[str, dict[str, Any], str]]:
    """(topic, message dict, kind) of a structurally valid message. Tame ones (7 in 10) keep
    every value in bounds and reach the stores; wild ones may step out of bounds. Each
    strategy is built once: building them per draw would cost more than drawing."""
    table: dict[tuple[str, str, bool], st.SearchStrategy[dict[str, Any]]] = {
        (gateway, kind, wild): make(gateway, layout, now, wild)
        for gateway in (*layout.gateways, *layout.unregistered)
        for kind, make in KINDS.items() for wild in (False, True)}
    pick_gateway = gateways(layout)
    pick_kind = st.sampled_from(sorted(KINDS))
    pick_wild = st.integers(0, 9).map(lambda n: n < 3)

    @st.composite
    def draw_valid(draw: st.DrawFn) -> tuple[str, dict[str, Any], str]:
        gateway, kind, wild = draw(pick_gateway), draw(pick_kind), draw(pick_wild)
        return _topic(gateway, kind), draw(table[(gateway, kind, wild)]), kind

    return draw_valid()


def snapshot(layout: Layout) -> st.SearchStrategy[FuzzPayload]:
    event = st.one_of(ulids(), ulids(), st.sampled_from(("x" * 65, "not an id", "🔥", "a.b")))
    # Mostly small: the largest cost the broker a megabyte each for one more code path.
    big = st.sampled_from((64 * 1024, MAX_SNAPSHOT_BYTES - 64, MAX_SNAPSHOT_BYTES + 1))
    size = st.tuples(st.integers(0, 29), st.integers(0, 2048), big).map(
        lambda t: t[2] if t[0] == 17 else t[1])
    head = st.sampled_from((JPEG_HEAD, JPEG_HEAD, JPEG_HEAD, b"\x89PNG\r\n", b""))
    seq = st.one_of(st.none(), st.sampled_from(INT_EDGES), st.integers(0, 10**19))

    def build(gateway: str, event: str, size: int, seed: int, head: bytes,
              seq: int | None) -> FuzzPayload:
        jpeg = head + random.Random(seed).randbytes(size)
        if seq is not None and seq >= 0 and jpeg.startswith(b"\xff\xd8"):
            jpeg = tag_snapshot(jpeg, seq)
        return FuzzPayload(f"{PREFIX}/{gateway}/snapshot/{event}",
                           jpeg[: MAX_SNAPSHOT_BYTES + 1],
                           "valid.snapshot" if head == JPEG_HEAD else "mutated.snapshot_not_jpeg")

    return st.builds(build, gateways(layout), event, size, st.integers(0, 2**32), head, seq)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path into a JSON value (dict keys and list indices)."""
    out: list[tuple[Any, ...]] = []
    items = value.items() if isinstance(value, dict) else (
        enumerate(value) if isinstance(value, list) else ())
    for key, child in items:
        out.append((*prefix, key))
        if len(out) < 200:
            out += _paths(child, (*prefix, key))
    return out


def _container(message: Any, path: tuple[Any, ...]) -> Any:
    for key in path[:-1]:
        message = message[key]
    return message


MUTATIONS = ("drop_field", "swap_type", "nested_garbage", "truncate", "bit_flip",
             "duplicate_key", "unknown_fields", "wrong_kind", "wrong_gateway_topic")


def mutated(valid_messages: st.SearchStrategy[tuple[str, dict[str, Any], str]]
            ) -> st.SearchStrategy[FuzzPayload]:
    values = json_values(4)
    extra = st.dictionaries(st.text(max_size=12), json_values(6), max_size=5)
    deep = st.sampled_from((nested(64), nested(10_000), nested(2_000, "dict"),
                            Raw("[" * 20_000)))
    return _mutate(valid_messages, values, extra, deep)  # type: ignore[no-any-return]


@st.composite
def _mutate(draw: st.DrawFn, valid_messages: st.SearchStrategy[Any],
            values: st.SearchStrategy[Any], extra: st.SearchStrategy[Any],
            deep: st.SearchStrategy[Any]) -> FuzzPayload:
    topic, message, _ = draw(valid_messages)
    how = draw(st.sampled_from(MUTATIONS))
    paths = _paths(message)
    pick = draw(st.integers(0, max(0, len(paths) - 1)))
    path = paths[pick] if paths else None
    if how == "drop_field" and path is not None:
        del _container(message, path)[path[-1]]
    elif how == "swap_type" and path is not None:
        _container(message, path)[path[-1]] = draw(values)
    elif how == "nested_garbage" and path is not None:
        _container(message, path)[path[-1]] = draw(deep)
    elif how == "unknown_fields":
        message.update(draw(extra))
    elif how == "wrong_kind":
        kind = draw(st.sampled_from(sorted(KINDS)))
        topic = topic.rsplit("/", 1)[0] if topic.endswith("cmd/result") else topic
        topic = "/".join(topic.split("/")[:3]) + "/" + kind
    elif how == "wrong_gateway_topic":
        topic = "/".join((*topic.split("/")[:2], draw(st.sampled_from(BAD_GATEWAYS)),
                          *topic.split("/")[3:]))
    payload = dumps(message, ascii_only=draw(st.booleans()))
    if how == "truncate":
        payload = payload[: draw(st.integers(0, max(0, len(payload) - 1)))]
    elif how == "bit_flip":
        rng = random.Random(draw(st.integers(0, 2**32)))
        flipped = bytearray(payload)
        for _ in range(draw(st.integers(1, 8))):
            i = rng.randrange(len(flipped))
            flipped[i] ^= 1 << rng.randrange(8)
        payload = bytes(flipped)
    elif how == "duplicate_key" and payload.startswith(b"{"):
        key = draw(st.sampled_from(("seq", "gateway", "ts", "readings", "id")))
        value = draw(st.sampled_from(('-1', '"gw-x"', "null", "[]", str(2**64))))
        payload = b"{" + f'"{key}": {value}, '.encode() + payload[1:]
    return FuzzPayload(topic, payload, f"mutated.{how}")


GARBAGE = ("non_utf8", "not_json", "json_scalar", "deep_nesting", "oversized", "empty",
           "random_bytes", "huge_numbers")


def garbage(layout: Layout) -> st.SearchStrategy[FuzzPayload]:
    return _garbage(st.one_of(gateways(layout), st.sampled_from(BAD_GATEWAYS)))  # type: ignore


@st.composite
def _garbage(draw: st.DrawFn, pick_gateway: st.SearchStrategy[str]) -> FuzzPayload:
    gateway = draw(pick_gateway)
    topic = _topic(gateway, draw(st.sampled_from(sorted(KINDS))))
    what = draw(st.sampled_from(GARBAGE))
    rng = random.Random(draw(st.integers(0, 2**32)))
    if what == "non_utf8":
        payload = b'{"gateway": "' + bytes([0xff, 0xfe, 0xc3, 0x28]) + rng.randbytes(16) + b'"}'
    elif what == "not_json":
        payload = draw(st.text(max_size=200)).encode("utf-8")
    elif what == "json_scalar":
        payload = draw(st.sampled_from((b"null", b"1", b'"x"', b"[]", b"true", b"{}", b"NaN")))
    elif what == "deep_nesting":
        depth = draw(st.sampled_from((100, 1_000, 20_000)))
        payload = dumps(draw(st.sampled_from((nested(depth), nested(depth, "dict")))))
    elif what == "oversized":
        size = draw(st.sampled_from((MAX_PAYLOAD_BYTES + 1, MAX_PAYLOAD_BYTES + 4096)))
        payload = json.dumps({"gateway": gateway, "pad": "x" * size}).encode()
    elif what == "empty":
        payload = b""
    elif what == "huge_numbers":
        digits = draw(st.sampled_from((20, 400, 5_000, 50_000)))
        payload = f'{{"gateway": "{gateway}", "seq": {"9" * digits}, "ts": 1e{digits}}}'.encode()
    else:
        payload = rng.randbytes(draw(st.integers(0, 4096)))
    return FuzzPayload(topic, payload, f"garbage.{what}")


def fuzz_payload(layout: Layout, now: datetime) -> st.SearchStrategy[FuzzPayload]:
    """Valid messages, snapshots, mutated, garbage weighted 36:4:40:20 by a drawn integer;
    hypothesis favours small integers, so a long run comes out near 48:43:9."""
    valid_messages = valid(layout, now)
    as_payload = st.builds(lambda m, ascii_only: FuzzPayload(
        m[0], dumps(m[1], ascii_only=ascii_only),
                                                             f"valid.{m[2]}"),
                           valid_messages, st.booleans())
    families = (as_payload, snapshot(layout), mutated(valid_messages), garbage(layout))
    weights = (36, 4, 40, 20)
    table = [family for family, weight in zip(families, weights, strict=True)
             for _ in range(weight)]

    @st.composite
    def draw_payload(draw: st.DrawFn) -> FuzzPayload:
        return draw(table[draw(st.integers(0, 99))])

    return draw_payload()


def generate(seed: int, count: int, layout: Layout, now: datetime, *, chunk: int = 2000,
             workers: int = 1) -> Iterator[FuzzPayload]:
    """``count`` payloads; the same seed, layout, ``now`` and chunk give the same bytes (with
    the same hypothesis version). Drawn in chunks, each a fresh hypothesis run with a seed of
    its own, so memory stays flat however many are asked for, and ``workers`` processes can
    draw the next chunks while the caller sends this one (a few chunks ahead, no more)."""
    sizes = [min(chunk, count - start) for start in range(0, count, chunk)]
    if workers <= 1:
        for part, size in enumerate(sizes):
            yield from _draw_part(layout, now, size, seed * 1_000_003 + part)
        return
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        ahead: deque[Future[list[FuzzPayload]]] = deque()
        parts = iter(enumerate(sizes))
        for part, size in itertools.islice(parts, workers + 1):
            ahead.append(pool.submit(_draw_part, layout, now, size, seed * 1_000_003 + part))
        while ahead:
            drawn = ahead.popleft().result()
            for part, size in itertools.islice(parts, 1):
                ahead.append(pool.submit(_draw_part, layout, now, size,
                                         seed * 1_000_003 + part))
            yield from drawn


def _draw_part(layout: Layout, now: datetime, count: int, seed: int) -> list[FuzzPayload]:
    return _draw(fuzz_payload(layout, now), count, seed)[:count]


def _draw(strategy: st.SearchStrategy[FuzzPayload], count: int, seed: int) -> list[FuzzPayload]:
    out: list[FuzzPayload] = []

    @hypothesis_seed(seed)
    @settings(max_examples=count, database=None, phases=[Phase.generate], deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def collect(payload: FuzzPayload) -> None:
        out.append(payload)

    collect()
    return out
