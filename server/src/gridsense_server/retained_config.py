"""Each gateway's retained ``config`` message, built from sections that different wings own
(``access`` from credential sync, ``gateway_config`` from remote configuration).

A retained topic holds one message: a wing publishing only its own section would erase the
others'. So a wing stores its section and the whole message is rebuilt from every stored
section and published again; the gateway reads the sections it knows.
"""

from __future__ import annotations

import itertools
import time
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from gridsense_protocol import ConfigUpdate, encode, topic_for, utc_now

from .db.remote_config_models import RetainedSection


class Publisher(Protocol):
    """Where the message goes: the server's MQTT bridge (QoS 1, thread-safe)."""

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> bool: ...


_seq = itertools.count(int(time.time() * 1000))  # server->edge sequence: increasing


def publish_section(factory: sessionmaker[Session], publisher: Publisher, gateway: str,
                    section: str, body: dict[str, Any], version: int) -> ConfigUpdate:
    """Store ``section`` of ``gateway``'s retained config and publish the whole message.
    ``version`` is the changed section's own version. Blocking: call from a worker thread."""
    with factory.begin() as session:
        row = session.get(RetainedSection, (gateway, section))
        if row is None:
            row = RetainedSection(gateway=gateway, section=section)
            session.add(row)
        row.body, row.updated_at = body, utc_now()
        session.flush()
        sections = {r.section: r.body for r in session.scalars(
            select(RetainedSection).where(RetainedSection.gateway == gateway))}
    message = ConfigUpdate(gateway=gateway, seq=next(_seq), ts=utc_now(), version=version,
                           body=sections)
    if not publisher.publish(topic_for(gateway, message.kind), encode(message), retain=True):
        raise ConnectionError(f"config for {gateway} not published (MQTT not connected)")
    return message
