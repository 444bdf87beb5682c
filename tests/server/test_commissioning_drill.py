"""The drill in server time (a clock the test moves) on SQLite and PostgreSQL: paged to the
installer alone, never escalated; closed as unreached once nothing delivered it within the
timeout, as acknowledged once the installer opened it; the report then red or not by that."""

from __future__ import annotations

import pytest
from commissioning_support import APP_ONLY_INSTALLER
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from gridsense_devtools.clock import Clock
from gridsense_devtools.community import REGISTRY_YAML
from gridsense_server.commissioning import CommissionError, Commissioning
from gridsense_server.commissioning.html import render
from gridsense_server.config import CommissioningConfig, LifecycleConfig
from gridsense_server.counters import Counters
from gridsense_server.db.commissioning_models import CommissioningRun
from gridsense_server.db.models import (
    EscalationStep,
    Incident,
    IncidentTransition,
    Notification,
    Point,
)
from gridsense_server.db.page_reads import mark_read
from gridsense_server.notify.links import LinkSigner
from gridsense_server.registry.registry_file import parse_registry
from gridsense_server.registry.store import apply_registry

LINKS = LinkSigner(b"0123456789abcdef0123", "https://gridsense.test", 3600)
TIMEOUT_S = 60


def _service(factory: sessionmaker[Session], clock: Clock) -> Commissioning:
    apply_registry(factory, parse_registry(REGISTRY_YAML + APP_ONLY_INSTALLER))
    return Commissioning(factory, CommissioningConfig(drill_timeout_s=TIMEOUT_S),
                         LifecycleConfig(), LINKS, None, Counters(), clock=clock)


def _run(factory: sessionmaker[Session], run_id: str) -> tuple[CommissioningRun, Incident]:
    with factory() as session:
        run = session.get(CommissioningRun, run_id)
        assert run is not None and run.drill_incident_id is not None
        incident = session.get(Incident, run.drill_incident_id)
        assert incident is not None
        return run, incident


async def test_an_undelivered_drill_times_out_and_an_opened_one_is_acknowledged(
    migrated_factory: sessionmaker[Session],
) -> None:
    clock = Clock()
    service = _service(migrated_factory, clock)
    run_id = service.start("gw-01", "control", "installer-ly", "local")
    run, incident = _run(migrated_factory, run_id)
    assert incident.drill and incident.state == "new" and incident.policy is None
    with migrated_factory() as session:
        paged = list(session.execute(select(Notification.recipient, Notification.channel)
                                     .where(Notification.incident_id == incident.id)))
        steps = list(session.scalars(select(EscalationStep.id).where(
            EscalationStep.incident_id == incident.id)))
    assert paged == [("installer-ly", "app")] and steps == []

    clock.advance(TIMEOUT_S - 1)
    assert service.settle_due() == 0
    with pytest.raises(CommissionError) as refused:
        service.start("gw-01", "control", "installer-ly", "local")
    assert refused.value.status == 409  # a second run waits for the drill under way

    clock.advance(2)
    assert service.settle_due() == 1
    assert service.settle_due() == 0  # settled once
    run, incident = _run(migrated_factory, run_id)
    assert (run.drill_outcome, incident.state) == ("unreached", "closed")
    with migrated_factory() as session:
        closing = session.scalars(select(IncidentTransition).where(
            IncidentTransition.incident_id == incident.id,
            IncidentTransition.action == "drill_close")).one()
    assert closing.actor == "system" and "not delivered in time" in closing.note
    report = await service.report(run_id)
    assert report["verdict"] == "red"
    assert {"unreached", "readings_error"} <= {r["code"] for r in report["reasons"]}
    assert report["drill"]["delivery_s"] is None

    # Again; this time the installer opens the page (its link, signed in) after 7 s.
    second = service.start("gw-01", "control", "installer-ly", "local")
    _, drill = _run(migrated_factory, second)
    clock.advance(7)
    with migrated_factory.begin() as session:
        assert mark_read(session, drill.id, "installer-ly", "app", clock.now)
    assert service.settle_due() == 1
    run, drill = _run(migrated_factory, second)
    assert (run.drill_outcome, drill.state) == ("acknowledged", "closed")
    report = await service.report(second)
    assert report["drill"]["round_trip_s"] == 7.0
    assert "unreached" not in {r["code"] for r in report["reasons"]}


async def test_a_drill_for_an_unknown_installer_is_refused(
    migrated_factory: sessionmaker[Session],
) -> None:
    service = _service(migrated_factory, Clock())
    with pytest.raises(CommissionError) as refused:
        service.start("gw-01", "control", "nobody", "local")
    assert refused.value.status == 404 and "nobody" in str(refused.value)
    with migrated_factory() as session:
        assert session.scalars(select(Incident.id)).all() == []


async def test_the_printable_report_escapes_what_the_registry_says(
    migrated_factory: sessionmaker[Session],
) -> None:
    """Names come from registry files and installers' forms: the page shows them as text."""
    clock = Clock()
    service = _service(migrated_factory, clock)
    with migrated_factory.begin() as session:
        session.get(Point, "gw-01.pump").name = '<img src=x onerror="alert(1)">水泵房'
    run_id = service.start("gw-01", "control", "installer-ly", "local")
    page = render(await service.report(run_id), "Asia/Shanghai")
    assert "<img" not in page and "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;水泵房" in page
    assert "进行中" in page  # the drill is still on its way
