"""MQTT topics as NATS subjects, the way nats-server's MQTT listener converts them: ``/``
becomes ``.``, a ``.`` inside a level becomes ``//``, ``+`` is ``*`` and ``#`` is ``>``. The
protocol's topics (``gridsense/v1/{gateway}/{kind}``, ids without spaces or wildcards) never
need the converter's other escapes; anything else is refused here rather than guessed."""

from __future__ import annotations

from dataclasses import dataclass

from gridsense_protocol import Kind
from gridsense_protocol import subscription as topic_filter

_PLACEHOLDER = "\0"


class SubjectError(ValueError):
    pass


def topic_to_subject(topic: str) -> str:
    if not topic or topic.startswith("/") or topic.endswith("/") or "//" in topic \
            or any(c in topic for c in (" ", "\t", "\0")):
        raise SubjectError(f"topic {topic!r} has no plain NATS subject")
    levels = topic.split("/")
    converted = []
    for level in levels:
        if level == "+":
            converted.append("*")
        elif level == "#":
            converted.append(">")
        elif level in ("*", ">"):
            raise SubjectError(f"topic {topic!r}: level {level!r} is a NATS wildcard")
        else:
            converted.append(level.replace(".", "//"))
    return ".".join(converted)


def subject_to_topic(subject: str) -> str:
    """The MQTT topic a gateway published on, from the subject NATS delivered it under."""
    if not subject or " " in subject or _PLACEHOLDER in subject:
        raise SubjectError(f"subject {subject!r} is not one of an MQTT topic")
    return subject.replace("//", _PLACEHOLDER).replace(".", "/").replace(_PLACEHOLDER, ".")


@dataclass(frozen=True, slots=True)
class StreamLayout:
    """One JetStream stream capturing some kinds of gateway messages, and its consumer."""

    stream: str
    durable: str
    subjects: tuple[str, ...]


def stream_layout(prefix: str, durable: str, group: str, kinds: tuple[Kind, ...]) -> StreamLayout:
    """``group``: events or telemetry (the two ingest sessions). nats-server 2.9 filters a
    consumer by one subject only, so each group gets a stream of its own whose consumer reads
    it whole."""
    return StreamLayout(
        stream=f"{prefix}_{group.upper()}",
        durable=f"{durable}-{group}",
        subjects=tuple(topic_to_subject(topic_filter(kind)) for kind in kinds),
    )
