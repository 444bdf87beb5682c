"""Deliveries through apprise to a real webhook receiver on loopback: delivered with a signed
link, retried after failures, rate limited per target with the overflow as one digest; and
the app channel reaching the person's stream."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from lifecycle_support import Clock, database, open_incident
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from gridsense_server.config import LifecycleConfig
from gridsense_server.counters import Counters
from gridsense_server.db.models import Grid, Notification, Staff
from gridsense_server.escalation.scheduler import EscalationScheduler
from gridsense_server.live.hub import LiveHub
from gridsense_server.notify.links import LinkSigner
from gridsense_server.notify.sender import LEASE, NotificationSender
from gridsense_server.registry.viewers import Viewer

LINKS = LinkSigner(b"0123456789abcdef0123", "http://gridsense.test", 3600)


class Receiver:
    """A JSON webhook endpoint that records what it got and fails on demand."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.fail_next = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if receiver.fail_next > 0:
                    receiver.fail_next -= 1
                    self.send_response(500)
                else:
                    receiver.received.append(json.loads(body))
                    self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"json://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def factory(tmp_path: Any) -> Iterator[sessionmaker[Session]]:
    yield from database(f"sqlite:///{tmp_path / 'server.db'}")


def _config(channels: list[str], **channel_specs: Any) -> LifecycleConfig:
    return LifecycleConfig.model_validate({
        "policies": {"p": {"steps": [{"after_s": 0, "notify": ["workers"],
                                      "channels": channels}]}},
        "channels": channel_specs,
    })


class Rig:
    """A channel wired to the receiver: the person's ``hook`` or the grid g01's ``robot``."""

    def __init__(self, factory: sessionmaker[Session], receiver: Receiver, channel: str,
                 hub: LiveHub | None = None, **spec: Any) -> None:
        name = channel.removeprefix("group:")
        with factory.begin() as session:
            if channel.startswith("group:"):
                session.execute(update(Grid).where(Grid.id == "g01")
                                .values(contacts={name: receiver.url}))
            else:
                session.execute(update(Staff).where(Staff.username == "worker-g01")
                                .values(contacts={name: receiver.url}))
        self.factory = factory
        self.config = _config(["app", channel] if hub else [channel], **{name: spec})
        self.clock = Clock()
        self.scheduler = EscalationScheduler(factory, self.config, LINKS, Counters(),
                                             clock=self.clock)
        self.worker = NotificationSender(factory, self.config, hub or LiveHub(Counters()),
                                     Counters(), clock=self.clock)

    def open(self, count: int = 1, first_seq: int = 1) -> list[str]:
        # A type of its own per incident: each opens (and pages) rather than appends.
        ids = [open_incident(self.factory, self.config, seq=seq, type=f"burst_{seq}",
                             clock=self.clock) for seq in range(first_seq, first_seq + count)]
        self.scheduler.run_due()
        return ids


def _statuses(factory: sessionmaker[Session]) -> list[tuple[str, int]]:
    with factory() as session:
        return [(r.status, r.attempts) for r in session.scalars(
            select(Notification).where(Notification.channel != "app").order_by(Notification.id))]


async def test_webhook_delivery_with_retries_and_a_signed_link(
    factory: sessionmaker[Session], receiver: Receiver
) -> None:
    hub = LiveHub(Counters())
    stream = hub.subscribe(Viewer("worker-g01", "worker", frozenset({"g01"})))
    rig = Rig(factory, receiver, "hook", hub, max_attempts=4)
    [incident_id] = rig.open()
    worker, clock = rig.worker, rig.clock

    receiver.fail_next = 2
    await worker.process_due()
    page = await stream.next()
    assert page["type"] == "page" and page["incident_id"] == incident_id
    assert _statuses(factory) == [("retry", 1)]
    clock.advance(10)
    await worker.process_due()
    assert _statuses(factory) == [("retry", 2)]
    clock.advance(10)
    await worker.process_due()
    assert _statuses(factory) == [("sent", 3)]
    assert len(receiver.received) == 1
    message = receiver.received[0]["message"]
    link = next(word for word in message.split() if "/link/" in word)
    assert link.startswith(f"http://gridsense.test/link/{incident_id}?u=worker-g01&")
    query = dict(part.split("=") for part in link.split("?")[1].split("&"))
    assert LINKS.verify(incident_id, "worker-g01", int(query["e"]), query["s"], clock.now)
    assert not LINKS.verify(incident_id, "worker-g02", int(query["e"]), query["s"], clock.now)
    await worker.process_due()
    assert len(receiver.received) == 1  # sent is sent: nothing goes twice


async def test_a_dead_channel_gives_up_after_max_attempts(
    factory: sessionmaker[Session], receiver: Receiver
) -> None:
    rig = Rig(factory, receiver, "hook", max_attempts=2)
    rig.open()
    receiver.fail_next = 10
    for _ in range(3):
        await rig.worker.process_due()
        rig.clock.advance(10)
    assert _statuses(factory) == [("failed", 2)]
    with factory() as session:
        assert "refused" in (session.scalars(select(Notification.error)).one() or "")


async def test_group_robot_rate_limit_turns_overflow_into_one_digest(
    factory: sessionmaker[Session], receiver: Receiver
) -> None:
    rig = Rig(factory, receiver, "group:robot", rate_per_min=3)
    rig.open(6)
    await rig.worker.process_due()
    assert len(receiver.received) == 3  # two single messages, then one digest of four
    assert "【汇总】4 条告警待处理" in receiver.received[2]["title"]
    assert [s for s, _ in _statuses(factory)] == ["sent"] * 3 + ["digested"] * 3

    rig.open(2, first_seq=7)  # the minute's budget is spent: these wait
    await rig.worker.process_due()
    assert len(receiver.received) == 3
    rig.clock.advance(61)
    await rig.worker.process_due()
    assert len(receiver.received) == 5


async def test_a_burst_to_one_target_is_grouped_within_the_rate_limit(
    factory: sessionmaker[Session], receiver: Receiver
) -> None:
    rig = Rig(factory, receiver, "group:robot", rate_per_min=20, group_over=3)
    rig.open(7)
    await rig.worker.process_due()
    assert len(receiver.received) == 3  # two singles, then the other five as one message
    assert receiver.received[2]["message"].count("/link/") == 5


async def test_a_send_claimed_by_a_process_that_died_is_retried_after_its_lease(
    factory: sessionmaker[Session], receiver: Receiver
) -> None:
    """A server killed mid-send leaves the row ``sending``: another process (or the restarted
    one) leaves it alone while the lease runs — it may be a live peer sending it — then sends it."""
    rig = Rig(factory, receiver, "hook")
    rig.open()
    dead = NotificationSender(factory, rig.config, LiveHub(Counters()), Counters(), clock=rig.clock)
    rows, _ = dead._claim(rig.clock())  # claimed, then the process is gone before sending
    assert len(rows) == 1 and _statuses(factory) == [("sending", 0)]
    await rig.worker.process_due()
    assert receiver.received == [] and _statuses(factory) == [("sending", 0)]
    rig.clock.advance(LEASE.total_seconds() + 1)
    await rig.worker.process_due()
    assert len(receiver.received) == 1 and _statuses(factory) == [("sent", 1)]
