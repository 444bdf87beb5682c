"""Message types of protocol v1. Pure data: no I/O, no clocks except ``utc_now``.

Every message carries the envelope (schema version, gateway id, ULID event id, per-gateway
sequence number, device-side timestamp, backfill flag). Unknown fields are ignored so a newer
edge can add optional fields without breaking an older server; missing or malformed known
fields are errors.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field
from ulid import ULID

from .topics import ID_PATTERN, Kind

SCHEMA_VERSION = 1

Identifier = Annotated[str, Field(pattern=f"^{ID_PATTERN}$")]
# Crockford base32, 26 characters: what python-ulid produces.
EventId = Annotated[str, Field(pattern=r"^[0-9A-HJKMNP-TV-Z]{26}$")]
SnakeName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,47}$")]


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


FiniteFloat = Annotated[float, AfterValidator(_finite)]


_NUL = "\x00"


def _no_nul(value: str) -> str:
    # PostgreSQL cannot store NUL in text or jsonb (SQLite can): refused here, by name, rather
    # than failing in one database and not the other.
    if _NUL in value:
        raise ValueError("must not contain a NUL character (\\u0000)")
    return value


NoNul = AfterValidator(_no_nul)
# Free text, bounded, without NUL: one alias per length the messages use.
Text16 = Annotated[str, Field(max_length=16), NoNul]
Text32 = Annotated[str, Field(max_length=32), NoNul]
Text64 = Annotated[str, Field(max_length=64), NoNul]
Text500 = Annotated[str, Field(max_length=500), NoNul]
Text1000 = Annotated[str, Field(max_length=1000), NoNul]


def _finite_json(value: Any) -> Any:
    """Free-form JSON (details, results, arguments) holds finite numbers only and text without
    NUL: the JSON parser takes ``NaN``, ``1e999`` and ``"\\u0000"``, which PostgreSQL's jsonb
    (and browsers' JSON.parse, for the numbers) refuse."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            raise ValueError("must hold finite numbers only (no NaN or infinity)")
        if isinstance(item, str) and _NUL in item:
            raise ValueError("must not contain a NUL character (\\u0000)")
        if isinstance(item, dict):
            stack.extend(item.values())
            stack.extend(item.keys())
        elif isinstance(item, list):
            stack.extend(item)
    return value


JsonObject = Annotated[dict[str, Any], AfterValidator(_finite_json)]

# Every integer fits a signed 64-bit column (PostgreSQL BIGINT, SQLite INTEGER, InfluxDB
# integer): a larger one would pass here and then fail in a store, where no retry can help.
INT64_MAX = 2**63 - 1
UInt64 = Annotated[int, Field(ge=0, le=INT64_MAX)]
Int64 = Annotated[int, Field(ge=-INT64_MAX - 1, le=INT64_MAX)]
# The times InfluxDB can store (nanoseconds since the epoch in a signed 64-bit integer) and a
# floor below which no sensor reading is plausible; the server narrows both by its clock.
TS_MIN = datetime(2000, 1, 1, tzinfo=UTC)
TS_MAX = datetime(2262, 4, 11, tzinfo=UTC)


# Checked inside pydantic-core: a Python validator would cost ~1 µs on every reading.
Timestamp = Annotated[AwareDatetime, Field(ge=TS_MIN, lt=TS_MAX)]


def new_event_id() -> str:
    return str(ULID())


def utc_now() -> datetime:
    return datetime.now(UTC)


class Severity(StrEnum):
    """Decides the handling level: minor -> grid, major -> community, critical -> street."""

    MINOR = "minor"
    MAJOR = "major"
    CRITICAL = "critical"


class AlarmState(StrEnum):
    ACTIVE = "active"
    CLEARED = "cleared"


class GatewayState(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"


class DriverState(StrEnum):
    STARTING = "starting"
    OK = "ok"
    DEGRADED = "degraded"  # some devices answer, some do not
    DOWN = "down"


class Envelope(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    kind: ClassVar[Kind]

    v: Literal[1] = SCHEMA_VERSION
    gateway: Identifier
    id: EventId = Field(default_factory=new_event_id)
    seq: UInt64
    ts: Timestamp
    backfill: bool = False


# The breakdowns a reading may carry as InfluxDB tags (detections by object class, by zone of
# the frame, by crossing direction). A fixed set, so that a reader of a point's own series can
# exclude every breakdown by name; the server's own tags (point, gateway, grid) are not in it.
BreakdownTag = Literal["class", "zone", "direction"]
BREAKDOWN_TAGS: tuple[str, ...] = ("class", "zone", "direction")
TagValue = Annotated[str, Field(min_length=1, max_length=48, pattern=r"^[A-Za-z0-9_.\-]+$")]


def _empty_is_none(tags: dict[str, str] | None) -> dict[str, str] | None:
    return tags or None  # none and empty are the same: the point's own series


class Reading(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    point: Identifier
    metric: SnakeName  # becomes the InfluxDB measurement, e.g. "temperature"
    value: FiniteFloat
    unit: Text16
    ts: Timestamp
    # A breakdown of the point's untagged reading of the same metric, e.g. detections by
    # {"class": "person"}: becomes InfluxDB tags. The point's own series is its untagged one.
    tags: Annotated[dict[BreakdownTag, TagValue] | None,
                    AfterValidator(_empty_is_none)] = None


class Telemetry(Envelope):
    kind: ClassVar[Kind] = Kind.TELEMETRY

    readings: Annotated[list[Reading], Field(min_length=1, max_length=2000)]


class Incident(Envelope):
    """An alarm condition detected at the edge. The server turns it into a work order."""

    kind: ClassVar[Kind] = Kind.INCIDENT

    point: Identifier
    type: SnakeName  # over_temperature, rapid_rise, door_forced, ...
    severity: Severity
    state: AlarmState = AlarmState.ACTIVE
    value: FiniteFloat | None = None
    threshold: FiniteFloat | None = None
    unit: Text16 | None = None
    message: Text500 = ""
    details: JsonObject = Field(default_factory=dict)
    has_snapshot: bool = False  # a JPEG follows on .../snapshot/{id}


class Status(Envelope):
    """Retained birth message; the same topic carries the broker-published last will."""

    kind: ClassVar[Kind] = Kind.STATUS

    state: GatewayState
    agent_version: Text32 | None = None
    started_at: Timestamp | None = None


class DriverHealth(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    state: DriverState
    detail: Text500 | None = None
    counters: dict[str, Int64] = Field(default_factory=dict)
    devices: dict[Text500, Text500] = Field(default_factory=dict)  # device/point -> its state


class Health(Envelope):
    kind: ClassVar[Kind] = Kind.HEALTH

    # Finite: ``ge=0`` alone lets infinity through, into the health series.
    uptime_s: Annotated[FiniteFloat, Field(ge=0)]
    cpu_percent: Annotated[FiniteFloat, Field(ge=0)]
    memory_rss_bytes: UInt64
    disk_free_bytes: UInt64
    drivers: dict[str, DriverHealth] = Field(default_factory=dict)
    counters: dict[str, Int64] = Field(default_factory=dict)


class ConfigUpdate(Envelope):
    """Server -> edge, retained. ``gateway`` is the target gateway."""

    kind: ClassVar[Kind] = Kind.CONFIG

    version: UInt64
    body: JsonObject


class Command(Envelope):
    """Server -> edge. ``gateway`` is the target gateway; the reply names ``id``."""

    kind: ClassVar[Kind] = Kind.CMD

    name: SnakeName
    args: JsonObject = Field(default_factory=dict)


class CommandResult(Envelope):
    kind: ClassVar[Kind] = Kind.CMD_RESULT

    command_id: EventId
    ok: bool
    result: JsonObject | None = None
    error: Text1000 | None = None


class AccessResult(StrEnum):
    """What happened at a door: a decision on a credential, or a change of the door's state."""

    GRANTED = "granted"
    DENIED = "denied"
    OPENED = "opened"
    CLOSED = "closed"
    FORCED_OPEN = "forced_open"  # opened without a grant or a request-to-exit
    HELD_OPEN = "held_open"  # open longer than the door allows
    REQUEST_TO_EXIT = "request_to_exit"
    TAMPER = "tamper"
    READER_OFFLINE = "reader_offline"
    READER_ONLINE = "reader_online"


def _ordered_ranges(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    for first, last in ranges:
        if first > last:
            raise ValueError(f"range [{first}, {last}] ends before it starts")
    return ranges


class AccessEvent(Envelope):
    """One thing that happened at a door. Card numbers never travel in clear: ``card`` is a
    keyed hash (HMAC-SHA256 with the site's secret, hex, truncated), ``credential`` the id of
    the credential it matched, if any."""

    kind: ClassVar[Kind] = Kind.ACCESS

    point: Identifier  # the reader's point
    door: Identifier
    result: AccessResult
    method: Literal["card", "pin", "pass", "rex", "door", "reader"] = "door"
    credential: Text64 | None = None  # for a pass: its holder (the resident, or the inviter)
    pass_id: Annotated[str, Field(pattern=r"^[0-9a-f]{16}$")] | None = None  # see passes.py
    card: Annotated[str, Field(pattern=r"^[0-9a-f]{8,64}$")] | None = None
    reason: Text64 | None = None  # why denied: unknown, revoked...
    offline: bool = False  # decided while the uplink was down (from the local copy)
    credentials_version: UInt64 | None = None


# An inclusive range of a gateway's sequence numbers, first <= last (checked in Settled).
SeqRange = tuple[UInt64, UInt64]
MAX_SETTLED_RANGES = 2000


class Settled(Envelope):
    """Server -> edge, on the gateway's ``ack`` topic: the gateway's messages the server has
    settled since its previous ``Settled`` (applied, dead-lettered or refused: durable either
    way), as inclusive ranges. ``gateway`` is the target gateway; ``seq`` numbers the server's
    own messages. A redelivered message is settled (and named) again, so a lost ``Settled``
    costs one re-send, never a message."""

    kind: ClassVar[Kind] = Kind.ACK

    ranges: Annotated[list[SeqRange], Field(min_length=1, max_length=MAX_SETTLED_RANGES),
                      AfterValidator(_ordered_ranges)]


JsonMessage = (
    Telemetry | Incident | Status | Health | ConfigUpdate | Command | CommandResult | AccessEvent
    | Settled
)

MESSAGE_TYPES: dict[Kind, type[Envelope]] = {
    cls.kind: cls
    for cls in (
        Telemetry, Incident, Status, Health, ConfigUpdate, Command, CommandResult, AccessEvent,
        Settled,
    )
}
