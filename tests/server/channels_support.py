"""Shared by the channel tests: the vendors' stand-ins, an SMTP server with STARTTLS under the
deployment CA, and a rig that opens incidents and sends their pages through them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lifecycle_support import Clock, database, open_incident
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from gridsense_devtools.standins.server import VendorStandins
from gridsense_devtools.standins.smtp import SmtpStandin
from gridsense_server.config import LifecycleConfig
from gridsense_server.counters import Counters
from gridsense_server.db.models import Grid, Notification, Point, Staff
from gridsense_server.escalation.scheduler import EscalationScheduler
from gridsense_server.live.hub import LiveHub
from gridsense_server.notify.links import LinkSigner
from gridsense_server.notify.sender import NotificationSender
from gridsense_server.pki.ca import DeploymentCA

LINKS = LinkSigner(b"0123456789abcdef0123", "https://gridsense.test", 3600)
HTTP_VENDORS = ("dingtalk", "wecom", "wecombot", "feishu")


@pytest.fixture
def factory(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    yield from database(f"sqlite:///{tmp_path / 'server.db'}")


@pytest.fixture
def standins() -> Iterator[VendorStandins]:
    with VendorStandins() as running:
        yield running


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[tuple[SmtpStandin, Path]]:
    ca, _ = DeploymentCA.init(tmp_path / "ca")
    issued = ca.issue_server("smtp", dns=["localhost"], ips=["127.0.0.1"])
    with SmtpStandin(issued.cert_file, issued.key_file) as server:
        yield server, ca.cert_file


def lifecycle(standins: VendorStandins, channels: list[str], *,
              email: dict[str, Any] | None = None, **specs: Any) -> LifecycleConfig:
    """Step 1 pages the grid's workers on ``channels``; step 2, five minutes on, the leader."""
    vendors: dict[str, Any] = {name: {"base_url": standins.base} for name in HTTP_VENDORS}
    if email is not None:
        vendors["email"] = email
    return LifecycleConfig.model_validate({
        "policies": {"p": {"steps": [
            {"after_s": 0, "notify": ["workers"], "channels": channels},
            {"after_s": 300, "notify": ["leader"], "channels": ["app"]}]}},
        "channels": specs, "vendors": vendors,
    })


class Rig:
    """worker-g01 (张伟) has the personal ``contacts``; grid g01 the ``robots``; the boiler
    point has a location."""

    def __init__(self, factory: sessionmaker[Session], config: LifecycleConfig, *,
                 contacts: dict[str, str] | None = None,
                 robots: dict[str, str] | None = None) -> None:
        with factory.begin() as session:
            session.execute(update(Staff).where(Staff.username == "worker-g01")
                            .values(contacts=contacts or None))
            session.execute(update(Grid).where(Grid.id == "g01").values(contacts=robots or None))
            session.execute(update(Point).where(Point.id == "gw-01.boiler")
                            .values(location="1号楼 B1 设备间"))
        self.factory = factory
        self.config = config
        self.clock = Clock()
        self.counters = Counters()
        self.scheduler = EscalationScheduler(factory, config, LINKS, self.counters,
                                             clock=self.clock)
        self.sender = NotificationSender(factory, config, LiveHub(Counters()), self.counters,
                                         clock=self.clock)

    def open(self, count: int = 1, first_seq: int = 1) -> list[str]:
        # A type of its own per incident: each opens (and pages) rather than appends.
        ids = [open_incident(self.factory, self.config, seq=seq,
                             type="over_temperature" if seq == 1 else f"burst_{seq}",
                             clock=self.clock) for seq in range(first_seq, first_seq + count)]
        self.scheduler.run_due()
        return ids

    def deliveries(self, channel: str | None = None) -> list[Notification]:
        with self.factory() as session:
            query = select(Notification).where(Notification.channel != "app")
            if channel is not None:
                query = query.where(Notification.channel == channel)
            return list(session.scalars(query.order_by(Notification.id)))

    def paged(self) -> set[str]:
        with self.factory() as session:
            return set(session.scalars(select(Notification.recipient)))
