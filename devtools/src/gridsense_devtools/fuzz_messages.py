"""Hypothesis strategies for protocol v1 messages as JSON-ready dicts, with extreme but
type-correct values: int64 edges, the largest and smallest floats, NaN and infinities in the
spellings a JSON parser may meet, unicode, far past and future times, empty and huge lists.

Dicts, not protocol models: a model could not carry the values the server must refuse.
"""

from __future__ import annotations

import contextlib
import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

from gridsense_protocol import INT64_MAX, TS_MAX, TS_MIN

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


@dataclass(frozen=True, slots=True)
class Raw:
    """JSON text written as is: ``NaN``, ``1e999``, a lone surrogate escape, deep nesting."""

    text: str


@dataclass(frozen=True, slots=True)
class Layout:
    """Whom the payloads speak for: registered gateways with their points, and gateways the
    registry does not know."""

    gateways: dict[str, tuple[str, ...]]
    unregistered: tuple[str, ...]

    @property
    def all_points(self) -> tuple[str, ...]:
        return tuple(p for points in self.gateways.values() for p in points)


def dumps(value: Any, *, ascii_only: bool = True) -> bytes:
    """JSON with ``Raw`` parts spliced in verbatim (NaN allowed, as Python writes it)."""
    raws: list[str] = []

    def placeholder(obj: Any) -> str:
        if isinstance(obj, Raw):
            raws.append(obj.text)
            return f"@@raw{len(raws) - 1}@@"
        raise TypeError(type(obj).__name__)

    text = json.dumps(value, default=placeholder, ensure_ascii=ascii_only, allow_nan=True)
    for i, raw in enumerate(raws):
        text = text.replace(f'"@@raw{i}@@"', raw, 1)
    return text.encode("utf-8", "surrogatepass")


INT_EDGES = (0, 1, -1, 2**31 - 1, 2**32, INT64_MAX, INT64_MAX + 1, -(2**63), -(2**63) - 1,
             2**64, 10**30)
FLOAT_EDGES = (0.0, -0.0, 5e-324, -5e-324, 2.2250738585072014e-308, 1.7976931348623157e308,
               -1.7976931348623157e308, 1e-300, 1e300, 0.1, -273.15)
# Not finite, spelled every way a payload can: Python's tokens, an overflowing literal, strings.
NOT_FINITE = (Raw("NaN"), Raw("Infinity"), Raw("-Infinity"), Raw("1e999"), Raw("-1e999"),
              "NaN", "inf", "-Infinity")
NASTY_TEXT = ("", " ", "\x00", "bad\x00byte", "\u202egnp.exe", "' OR 1=1 --", "<script>x</script>",
              "网格员 张伟", "🔥" * 40, "a" * 501, "\\", "\n\r\t", "%s%n", Raw('"\\ud800"'),
              Raw('"\\udfff\\ud800x"'), Raw('"\\u0000"'))


def ints(wild: bool = True, unsigned: bool = True) -> st.SearchStrategy[Any]:
    low = 0 if unsigned else -(2**63)
    edges = st.sampled_from([i for i in INT_EDGES if low <= i <= INT64_MAX])
    if not wild:
        return st.one_of(edges, st.integers(0, 40), st.integers(low, INT64_MAX))
    return st.one_of(st.sampled_from(INT_EDGES), st.integers(0, 40), st.integers(low, INT64_MAX),
                     st.integers(-(2**80), 2**80))


def seqs(wild: bool) -> st.SearchStrategy[Any]:
    # Small numbers come back often: duplicate sequence numbers on purpose.
    return st.one_of(st.integers(1, 30), st.integers(1, 30), ints(wild))


def floats(wild: bool = True) -> st.SearchStrategy[Any]:
    finite = st.one_of(st.floats(allow_nan=False, allow_infinity=False),
                       st.sampled_from(FLOAT_EDGES))
    if not wild:
        return finite
    return st.one_of(finite, finite, st.integers(-(10**20), 10**20), st.sampled_from(NOT_FINITE))


def texts(max_size: int = 40, wild: bool = True) -> st.SearchStrategy[Any]:
    nasty = [t for t in NASTY_TEXT if wild or (isinstance(t, str) and len(t) <= max_size)]
    return st.one_of(st.text(max_size=max_size), st.sampled_from(nasty))


def keys() -> st.SearchStrategy[str]:
    """Dict keys: JSON keys are strings, so no raw spellings here."""
    return st.one_of(st.text(max_size=12),
                     st.sampled_from([t for t in NASTY_TEXT if isinstance(t, str)]))


def times(now: datetime, wild: bool = True) -> st.SearchStrategy[Any]:
    """Device times: mostly near the run's start, then the protocol's edges and beyond."""
    near = st.integers(-86_400_000_000, 60_000_000).map(lambda us: now + timedelta(microseconds=us))
    zone = st.sampled_from((UTC, timezone(timedelta(hours=14)), timezone(-timedelta(hours=12)),
                            timezone(timedelta(hours=8))))
    anywhere = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30),
                            timezones=zone)
    in_bounds = (TS_MIN, TS_MAX - timedelta(microseconds=1), now + timedelta(days=1),
                 now - timedelta(days=365 * 20))
    edges = st.sampled_from((*in_bounds, TS_MIN - timedelta(microseconds=1), TS_MAX)
                            if wild else in_bounds)
    aware = st.one_of(near, near, near, edges, anywhere).map(lambda t: t.isoformat())
    if not wild:
        return st.one_of(near, near, near, edges).map(lambda t: t.isoformat())
    odd = st.sampled_from(("2024-01-01T00:00:00", "9999-12-31T23:59:59Z", "0001-01-01T00:00Z",
                           "2024-02-30T00:00:00Z", "yesterday", "", 0, 1e20, -1, None))
    return st.one_of(aware, aware, aware, aware, odd)


def ulids() -> st.SearchStrategy[str]:
    return st.text(alphabet=CROCKFORD, min_size=26, max_size=26)


_LOWER = "abcdefghijklmnopqrstuvwxyz"
_ID_REST = _LOWER + _LOWER.upper() + "0123456789_.-"


def snake_names(common: tuple[str, ...], wild: bool) -> st.SearchStrategy[str]:
    odd = ("Temperature", "9lives", "temp erature", "温度", "", "a" * 49)
    made = st.builds(str.__add__, st.sampled_from(_LOWER),
                     st.text(alphabet=_LOWER + "0123456789_", max_size=47))
    return st.one_of(st.sampled_from(common), st.sampled_from(common), made,
                     st.sampled_from(odd if wild else ("a" * 48,)))


def point_ids(layout: Layout, gateway: str, wild: bool) -> st.SearchStrategy[str]:
    own = layout.gateways.get(gateway) or (f"{gateway}.p0",)
    odd = ("", "-x", "a" * 65, "网关.1", "gw-01/p1", "gw 01") if wild else ("a" * 64,)
    made = st.builds(str.__add__, st.sampled_from(_LOWER + "0123456789"),
                     st.text(alphabet=_ID_REST, max_size=63))
    return st.one_of(st.sampled_from(own), st.sampled_from(own), st.sampled_from(own),
                     st.sampled_from(layout.all_points), st.sampled_from(odd), made,
                     st.just(f"{gateway}.new-sensor"))


def json_values(max_leaves: int = 12) -> st.SearchStrategy[Any]:
    leaves = st.one_of(st.none(), st.booleans(), ints(), floats(), texts(20))
    return st.recursive(leaves, lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8), children, max_size=4)),
        max_leaves=max_leaves)


def nested(depth: int, kind: str = "list") -> Raw:
    """JSON nested ``depth`` deep: parsers have recursion limits, stores have none of their own."""
    if kind == "list":
        return Raw("[" * depth + "1" + "]" * depth)
    return Raw('{"a":' * depth + "1" + "}" * depth)


Kind = Callable[[str, Layout, datetime, bool], st.SearchStrategy[dict[str, Any]]]


def _pick(wild: bool, valid: tuple[Any, ...], odd: tuple[Any, ...]) -> st.SearchStrategy[Any]:
    """One of ``valid``; with ``wild`` also (a third of the time) one of ``odd``."""
    return st.one_of(st.sampled_from(valid), st.sampled_from(valid), st.sampled_from(odd)) \
        if wild else st.sampled_from(valid)


def envelope(gateway: str, layout: Layout, now: datetime,
             wild: bool) -> st.SearchStrategy[dict[str, Any]]:
    others = (*layout.gateways, *layout.unregistered)
    body_gateway = st.one_of(st.just(gateway), st.just(gateway), st.just(gateway),
                             st.sampled_from(others)) if wild else st.just(gateway)
    return st.fixed_dictionaries(
        {"v": _pick(wild, (1,), (2, "1", 0)), "gateway": body_gateway, "id": ulids(),
         "seq": seqs(wild), "ts": times(now, wild)},
        optional={"backfill": _pick(wild, (True, False), ("yes", 1))})


def _with(body: st.SearchStrategy[dict[str, Any]], gateway: str, layout: Layout,
          now: datetime, wild: bool) -> st.SearchStrategy[dict[str, Any]]:
    return st.builds(lambda env, fields: {**env, **fields},
                     envelope(gateway, layout, now, wild), body)


def _expand(drawn: list[dict[str, Any]], size: int, seed: int) -> list[dict[str, Any]]:
    """The drawn readings repeated up to ``size``, each copy a microsecond later (distinct
    points to InfluxDB) and half of them with a new value."""
    if size <= len(drawn):
        return drawn[:size]
    rng = random.Random(seed)
    out = list(drawn)
    while len(out) < size:
        base = dict(rng.choice(drawn))
        if isinstance(base["ts"], str) and base["ts"][:4].isdigit():
            with contextlib.suppress(ValueError, OverflowError):
                t = datetime.fromisoformat(base["ts"]) + timedelta(microseconds=len(out))
                base["ts"] = t.isoformat()
        if rng.random() < 0.5:
            base["value"] = rng.uniform(-50.0, 150.0)
        out.append(base)
    return out


def readings(gateway: str, layout: Layout, now: datetime, wild: bool) -> st.SearchStrategy[Any]:
    """A few drawn readings, repeated up to a drawn length (up to 2000, 0 or 2001 when wild):
    hypothesis draws the shape, a seeded Random the bulk."""
    metrics = ("temperature", "humidity", "detections", "door")
    drawn = st.lists(st.fixed_dictionaries({
        "point": point_ids(layout, gateway, wild), "metric": snake_names(metrics, wild),
        "value": st.one_of(floats(False), floats(False), floats(wild)),
        "unit": st.one_of(_pick(wild, ("°C", "%", ""), ("x" * 17,)), texts(16, wild)),
        "ts": times(now, wild)}), min_size=1, max_size=4)
    size = st.one_of(*[st.integers(1, 4)] * 3, *[st.integers(1, 60)] * 3,
                     _pick(wild, (1, 500, 1999, 2000), (0, 2001)))
    return st.builds(_expand, drawn, size, st.integers(0, 2**32))


def telemetry(gateway: str, layout: Layout, now: datetime, wild: bool) -> st.SearchStrategy[Any]:
    return st.builds(lambda env, rs: {**env, "readings": rs},
                     envelope(gateway, layout, now, wild), readings(gateway, layout, now, wild))


def incident(gateway: str, layout: Layout, now: datetime, wild: bool) -> st.SearchStrategy[Any]:
    types = ("over_temperature", "rapid_rise", "door_forced", "gateway_offline")
    details = st.dictionaries(st.text(max_size=10), json_values())
    if wild:
        details = st.one_of(details, st.builds(lambda d: {"deep": d}, st.sampled_from(
            (nested(50), nested(300, "dict")))))
    return _with(st.fixed_dictionaries(
        {"point": point_ids(layout, gateway, wild), "type": snake_names(types, wild),
         "severity": _pick(wild, ("minor", "major", "critical"), ("CRITICAL", "", None))},
        optional={"state": _pick(wild, ("active", "cleared"), ("open",)),
                  "value": st.one_of(st.none(), floats(wild)),
                  "threshold": st.one_of(st.none(), floats(wild)),
                  "unit": st.one_of(st.none(), texts(16, wild)), "message": texts(500, wild),
                  "details": details, "has_snapshot": st.booleans()}), gateway, layout, now, wild)


def status(gateway: str, layout: Layout, now: datetime, wild: bool) -> st.SearchStrategy[Any]:
    return _with(st.fixed_dictionaries(
        {"state": _pick(wild, ("online", "offline", "online"), ("sleeping",))},
        optional={"agent_version": texts(32, wild), "started_at": times(now, wild)}),
        gateway, layout, now, wild)


def health(gateway: str, layout: Layout, now: datetime, wild: bool) -> st.SearchStrategy[Any]:
    driver = st.fixed_dictionaries(
        {"state": _pick(wild, ("starting", "ok", "degraded", "down"), ("on fire",))},
        optional={"detail": st.one_of(st.none(), texts(500, wild)),
                  "counters": st.dictionaries(keys(), ints(wild, unsigned=False), max_size=4),
                  "devices": st.dictionaries(keys(), texts(12, False), max_size=4)})
    return _with(st.fixed_dictionaries(
        {"uptime_s": floats(wild), "cpu_percent": floats(wild),
         "memory_rss_bytes": ints(wild), "disk_free_bytes": ints(wild)},
        optional={"drivers": st.dictionaries(keys(), driver, max_size=3),
                  "counters": st.dictionaries(keys(), ints(wild, unsigned=False), max_size=6)}),
        gateway, layout, now, wild)


def command_result(gateway: str, layout: Layout, now: datetime,
                   wild: bool) -> st.SearchStrategy[Any]:
    return _with(st.fixed_dictionaries(
        {"command_id": st.one_of(ulids(), ulids(), texts(30, wild)) if wild else ulids(),
         "ok": st.booleans()},
        optional={"result": st.one_of(st.none(), st.dictionaries(st.text(max_size=8),
                                                                 json_values())),
                  "error": st.one_of(st.none(), texts(1000, wild))}), gateway, layout, now, wild)


def access(gateway: str, layout: Layout, now: datetime, wild: bool) -> st.SearchStrategy[Any]:
    results = ("granted", "denied", "opened", "closed", "forced_open", "held_open",
               "request_to_exit", "tamper", "reader_offline", "reader_online")
    card = st.text(alphabet="0123456789abcdef", min_size=8, max_size=64)
    return _with(st.fixed_dictionaries(
        {"point": point_ids(layout, gateway, wild), "door": point_ids(layout, gateway, wild),
         "result": _pick(wild, results, ("maybe",))},
        optional={"method": _pick(wild, ("card", "pin", "rex", "door", "reader"), ("face",)),
                  "credential": st.one_of(st.none(), texts(64, wild)),
                  "card": st.one_of(st.none(), card, texts(10, wild)) if wild else card,
                  "reason": st.one_of(st.none(), texts(64, wild)), "offline": st.booleans(),
                  "credentials_version": st.one_of(st.none(), ints(wild))}),
        gateway, layout, now, wild)


KINDS: dict[str, Kind] = {"telemetry": telemetry, "incident": incident, "status": status,
                          "health": health, "cmd/result": command_result, "access": access}
