"""MQTT topic names: the one place that knows how topics are spelled.

Every gateway lives under ``gridsense/v1/{gateway}/``; the broker ACL then needs a single
pattern (a gateway may publish only under its own prefix and read only its config/cmd).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

ROOT = "gridsense"
VERSION = "v1"
PREFIX = f"{ROOT}/{VERSION}"

# Gateway and point ids end up in topics, InfluxDB tags and file names: keep them boring.
ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}"
_ID_RE = re.compile(f"^{ID_PATTERN}$")


class Kind(StrEnum):
    """What a topic carries. Values are the topic's suffix after the gateway id."""

    TELEMETRY = "telemetry"
    INCIDENT = "incident"
    SNAPSHOT = "snapshot"  # gridsense/v1/{gw}/snapshot/{event id}; binary JPEG
    STATUS = "status"  # retained birth + last will
    HEALTH = "health"
    CONFIG = "config"  # server -> edge, retained
    CMD = "cmd"  # server -> edge
    CMD_RESULT = "cmd/result"  # edge -> server
    ACCESS = "access"  # edge -> server: door decisions and door states
    ACK = "ack"  # server -> edge: the sequence ranges the server has settled (end to end)


EDGE_PUBLISHED = frozenset(
    {Kind.TELEMETRY, Kind.INCIDENT, Kind.SNAPSHOT, Kind.STATUS, Kind.HEALTH, Kind.CMD_RESULT,
     Kind.ACCESS}
)
SERVER_PUBLISHED = frozenset({Kind.CONFIG, Kind.CMD, Kind.ACK})


class TopicError(ValueError):
    """A topic that is not a gridsense topic; names the topic and what is wrong."""

    def __init__(self, topic: str, reason: str) -> None:
        super().__init__(f"topic {topic!r}: {reason}")
        self.topic = topic
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Topic:
    gateway: str
    kind: Kind
    event: str | None = None  # only for snapshots

    def __str__(self) -> str:
        return topic_for(self.gateway, self.kind, self.event)


def is_valid_id(value: str) -> bool:
    return bool(_ID_RE.match(value))


def topic_for(gateway: str, kind: Kind, event: str | None = None) -> str:
    if not is_valid_id(gateway):
        raise TopicError(f"{PREFIX}/{gateway}", "gateway id must match " + ID_PATTERN)
    if kind is Kind.SNAPSHOT:
        if not event or not is_valid_id(event):
            raise TopicError(f"{PREFIX}/{gateway}/snapshot", "a snapshot topic needs an event id")
        return f"{PREFIX}/{gateway}/snapshot/{event}"
    return f"{PREFIX}/{gateway}/{kind.value}"


def subscription(kind: Kind, gateway: str = "+") -> str:
    """Topic filter for one kind across all gateways (or one gateway)."""
    if kind is Kind.SNAPSHOT:
        return f"{PREFIX}/{gateway}/snapshot/+"
    return f"{PREFIX}/{gateway}/{kind.value}"


def shared_subscription(group: str, kind: Kind) -> str:
    """MQTT 5 shared subscription so several server processes split the load.

    Retained messages are never delivered to shared subscriptions, so the retained
    status topic must be subscribed plainly (see ``subscription``).
    """
    return f"$share/{group}/{subscription(kind)}"


def parse_topic(topic: str) -> Topic:
    parts = topic.split("/")
    if len(parts) < 4 or parts[0] != ROOT:
        raise TopicError(topic, f"not under {PREFIX}/")
    if parts[1] != VERSION:
        raise TopicError(topic, f"unsupported protocol version {parts[1]!r}, expected {VERSION}")
    gateway = parts[2]
    if not is_valid_id(gateway):
        raise TopicError(topic, "gateway id must match " + ID_PATTERN)
    rest = parts[3:]
    if rest[0] == Kind.SNAPSHOT.value:
        if len(rest) != 2 or not is_valid_id(rest[1]):
            raise TopicError(topic, "snapshot topic must end with /snapshot/{event id}")
        return Topic(gateway, Kind.SNAPSHOT, rest[1])
    suffix = "/".join(rest)
    try:
        kind = Kind(suffix)
    except ValueError:
        raise TopicError(topic, f"unknown message kind {suffix!r}") from None
    return Topic(gateway, kind)
