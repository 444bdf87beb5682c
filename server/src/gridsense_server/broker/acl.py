"""What each role may publish and subscribe to, spelled by the protocol's topic functions.

Broker-neutral: the Mosquitto mapping turns these into dynsec ACLs; another broker (EMQX) gets
the same list. A gateway's rules name its own id literally, since Mosquitto 2.0's dynsec plugin
does not substitute %u or %c in ACL topics (checked against 2.0.11: a rule for
``gridsense/v1/%u/telemetry`` matched only that literal topic).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from gridsense_protocol.topics import (
    EDGE_PUBLISHED,
    PREFIX,
    SERVER_PUBLISHED,
    Kind,
    subscription,
    topic_for,
)

from .accounts import Role


class Action(StrEnum):
    PUBLISH = "publish"
    SUBSCRIBE = "subscribe"


@dataclass(frozen=True, slots=True)
class TopicRule:
    action: Action
    topic: str  # a topic filter; + and # as in MQTT


def _sorted(kinds: frozenset[Kind]) -> list[Kind]:
    return sorted(kinds, key=lambda kind: kind.value)


def gateway_rules(gateway: str) -> list[TopicRule]:
    """Publish only under its own prefix; subscribe only to its own config and commands."""
    publish = [TopicRule(Action.PUBLISH, subscription(kind, gateway))
               for kind in _sorted(EDGE_PUBLISHED)]
    read = [TopicRule(Action.SUBSCRIBE, topic_for(gateway, kind))
            for kind in _sorted(SERVER_PUBLISHED)]
    return publish + read


def server_rules() -> list[TopicRule]:
    """Read every gateway's topics (plainly, or in any share group); write config and cmd."""
    everything = f"{PREFIX}/#"
    return [
        TopicRule(Action.SUBSCRIBE, everything),
        TopicRule(Action.SUBSCRIBE, f"$share/+/{everything}"),
        *(TopicRule(Action.PUBLISH, subscription(kind)) for kind in _sorted(SERVER_PUBLISHED)),
    ]


def rules_for(name: str, role: Role) -> list[TopicRule]:
    return server_rules() if role is Role.SERVER else gateway_rules(name)
