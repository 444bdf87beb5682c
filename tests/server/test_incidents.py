"""Incidents: open, append, replay no-op, cleared, unknown points — on SQLite and PostgreSQL,
and end to end through MQTT."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from server_helpers import TEN_YEARS_S, EdgePublisher, async_wait_until
from sqlalchemy import func, select

from gridsense_protocol import AlarmState, Incident, Severity
from gridsense_server.app import ServerApp
from gridsense_server.counters import Counters
from gridsense_server.db import make_engine, make_session_factory, upgrade
from gridsense_server.db.models import Incident as IncidentRow
from gridsense_server.db.models import IncidentEvent
from gridsense_server.live.hub import LiveHub
from gridsense_server.registry.registry_file import load_registry_file
from gridsense_server.registry.store import apply_registry
from gridsense_server.registry.viewers import Viewer
from gridsense_server.workorders.incidents import IncidentService

T0 = datetime(2024, 5, 1, 8, 0, 0, tzinfo=UTC)


def incident(point: str, seq: int, ts: datetime, *, state: AlarmState = AlarmState.ACTIVE,
             value: float = 65.0, severity: Severity = Severity.MAJOR,
             gateway: str = "gw-01") -> Incident:
    return Incident(gateway=gateway, seq=seq, ts=ts, point=point, type="over_temperature",
                    severity=severity, state=state, value=value, message=f"{value} °C")


@pytest.fixture
def service(db_url: str, registry_file):
    engine = make_engine(db_url)
    upgrade(engine)
    factory = make_session_factory(engine)
    apply_registry(factory, load_registry_file(registry_file))
    counters = Counters()
    yield IncidentService(factory, LiveHub(counters), counters, late_after_s=TEN_YEARS_S)
    engine.dispose()


async def test_open_append_replay_and_clear(service: IncidentService) -> None:
    control = service.hub.subscribe(Viewer("control", "control", None))
    first = incident("gw-01.boiler", 1, T0)
    opened = await service.handle(first)
    assert opened is not None and opened.event == "opened"
    assert opened.incident["state"] == "new" and opened.incident["alarm"] == "active"
    assert opened.incident["grid"] == "g01-a" and opened.incident["count"] == 1

    repeat = incident("gw-01.boiler", 2, T0 + timedelta(seconds=30), value=70.0,
                      severity=Severity.CRITICAL)
    updated = await service.handle(repeat)
    assert updated is not None and updated.event == "updated"
    assert updated.incident["id"] == opened.incident["id"]
    assert updated.incident["count"] == 2
    assert updated.incident["value"] == 70.0
    assert updated.incident["severity"] == "critical"
    assert updated.incident["last_seen_at"] == "2024-05-01T08:00:30Z"
    assert updated.incident["opened_at"] == "2024-05-01T08:00:00Z"  # device times

    assert await service.handle(repeat) is None  # the same event id again: a no-op
    assert service.counters.get("incidents.duplicate_events") == 1

    late = incident("gw-01.boiler", 3, T0 - timedelta(seconds=5))  # older device time
    stale = await service.handle(late)
    assert stale is not None and stale.incident["count"] == 3
    assert stale.incident["last_seen_at"] == "2024-05-01T08:00:30Z"

    clear = incident("gw-01.boiler", 4, T0 + timedelta(seconds=60), state=AlarmState.CLEARED,
                     value=55.0)
    cleared = await service.handle(clear)
    assert cleared is not None and cleared.event == "cleared"
    assert cleared.incident["alarm"] == "cleared" and cleared.incident["state"] == "new"
    assert cleared.incident["count"] == 3  # a clear is not another occurrence

    again = await service.handle(incident("gw-01.boiler", 5, T0 + timedelta(seconds=90)))
    assert again is not None and again.event == "updated"  # still the same open work order
    assert again.incident["id"] == opened.incident["id"] and again.incident["alarm"] == "active"

    with service.factory() as session:
        assert session.scalar(select(func.count()).select_from(IncidentRow)) == 1
        assert session.scalar(select(func.count()).select_from(IncidentEvent)) == 5
    assert [(await control.next())["event"] for _ in range(5)] == [
        "opened", "updated", "updated", "cleared", "updated"
    ]


async def test_a_closed_incident_is_not_reopened_by_a_repeat(service: IncidentService) -> None:
    opened = await service.handle(incident("gw-01.pump", 1, T0))
    assert opened is not None
    with service.factory.begin() as session:
        session.get(IncidentRow, opened.incident["id"]).state = "closed"
    reopened = await service.handle(incident("gw-01.pump", 2, T0 + timedelta(minutes=5)))
    assert reopened is not None and reopened.event == "opened"
    assert reopened.incident["id"] != opened.incident["id"]


async def test_a_clear_without_an_open_incident_changes_nothing(service: IncidentService) -> None:
    assert await service.handle(incident("gw-01.pump", 1, T0, state=AlarmState.CLEARED)) is None
    assert service.counters.get("incidents.cleared_without_open") == 1


async def test_unknown_points_are_recorded_for_control_only(service: IncidentService) -> None:
    worker = service.hub.subscribe(Viewer("worker-g01", "worker", frozenset({"g01", "g01-a"})))
    control = service.hub.subscribe(Viewer("control", "control", None))
    change = await service.handle(incident("gw-07.ghost", 1, T0, gateway="gw-07"))
    assert change is not None and change.incident["grid"] is None
    assert service.counters.get("incidents.unknown_point") == 1
    assert len(worker) == 0 and len(control) == 1


async def test_incidents_end_to_end_through_mqtt(
    running_server: ServerApp, edge: EdgePublisher
) -> None:
    first = edge.publish(edge.incident("gw-01.boiler", ts=T0))
    await async_wait_until(lambda: running_server.counters.get("incidents.opened") == 1)
    edge.publish(edge.incident("gw-01.boiler", ts=T0 + timedelta(seconds=10)))
    await async_wait_until(lambda: running_server.counters.get("incidents.updated") == 1)
    edge.publish(first)  # a QoS 1 redelivery / edge replay of the first event
    await async_wait_until(lambda: running_server.counters.get("incidents.duplicate_events") == 1)
    with running_server.factory() as session:
        [row] = session.scalars(select(IncidentRow)).all()
        assert (row.count, row.state, row.alarm, row.grid_id) == (2, "new", "active", "g01-a")
        assert row.first_event_id == first.id


async def test_one_batch_folds_in_order_like_one_message_at_a_time(
    service: IncidentService,
) -> None:
    first = incident("gw-01.boiler", 1, T0)
    other = incident("gw-02.boiler", 2, T0, gateway="gw-02")
    repeat = incident("gw-01.boiler", 3, T0 + timedelta(seconds=10))
    clear = incident("gw-01.boiler", 4, T0 + timedelta(seconds=20), state=AlarmState.CLEARED)
    changes = await service.handle_batch([first, other, repeat, first, clear, repeat])
    events = [(c.event, c.incident["count"], c.incident["alarm"]) if c else None
              for c in changes]
    assert events == [
        ("opened", 1, "active"), ("opened", 1, "active"), ("updated", 2, "active"), None,
        ("cleared", 2, "cleared"), None,
    ]
    assert service.counters.get("incidents.duplicate_events") == 2
    assert changes[0].incident["id"] == changes[4].incident["id"]  # type: ignore[union-attr]
    with service.factory() as session:
        assert session.scalar(select(func.count()).select_from(IncidentRow)) == 2
        assert session.scalar(select(func.count()).select_from(IncidentEvent)) == 4
