"""The hand-written migrations build exactly the models' schema, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import column, insert, inspect, select, table, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gridsense_server.db import make_engine, make_session_factory
from gridsense_server.db.migrate import current_revision, downgrade, upgrade
from gridsense_server.db.models import Base, EscalationStep, Incident, Notification

HEAD = "0018"
TABLES_0001 = {
    "streets", "communities", "grids", "points", "staff", "staff_grids", "incidents",
    "incident_events", "gateways",
}
TABLES_0002 = {"gateway_sequences", "command_results"}
NOW = datetime.now(UTC)


def _add_incident(session: Session, id_: str, state: str) -> None:
    """Only the columns of revision 0002 are named: the ORM (and the model's table, through its
    columns' Python defaults) would name every column of the current model, which an older
    schema lacks."""
    values = dict(
        id=id_, point_id="p1", grid_id=None, gateway="gw", type="over_temperature",
        severity="major", state=state, alarm="active", opened_at=NOW, last_seen_at=NOW,
        count=1, value=None, message="", first_event_id=id_, state_changed_at=NOW,
    )
    columns = [Incident.__table__.c[name] for name in values]
    session.execute(insert(table("incidents", *(column(c.name, c.type) for c in columns)))
                    .values(values))


def test_upgrade_matches_the_models_and_downgrade_undoes_it(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        assert current_revision(engine) is None
        upgrade(engine)
        assert current_revision(engine) == HEAD
        assert set(inspect(engine).get_table_names()) >= TABLES_0001 | TABLES_0002
        with engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
        assert differences == []

        upgrade(engine)  # idempotent: already at head
        assert current_revision(engine) == HEAD

        downgrade(engine)
        assert not (TABLES_0001 | TABLES_0002) & set(inspect(engine).get_table_names())
        upgrade(engine)
        assert current_revision(engine) == HEAD
    finally:
        engine.dispose()


def test_0002_keeps_existing_rows_and_its_downgrade_keeps_the_open_incident_index(
    db_url: str,
) -> None:
    """0001 data survives 0002 (new columns get their defaults); going back to 0001 rebuilds
    the tables without losing the one-open-incident-per-point-and-type rule."""
    engine = make_engine(db_url)
    try:
        upgrade(engine, "0001")
        with engine.begin() as connection:
            connection.execute(text(
                "INSERT INTO gateways (id, state) VALUES ('gw-old', 'online')"))
        factory = make_session_factory(engine)
        upgrade(engine)
        with engine.connect() as connection:
            assert connection.execute(text(
                "SELECT seq_redelivered FROM gateways WHERE id = 'gw-old'")).scalar() == 0
        with factory.begin() as session:
            _add_incident(session, "01J00000000000000000000001", "new")
        with factory() as session:
            assert session.get(Incident, "01J00000000000000000000001").backfilled is False

        downgrade(engine, "0001")
        assert current_revision(engine) == "0001"
        assert not TABLES_0002 & set(inspect(engine).get_table_names())
        columns = {c["name"] for c in inspect(engine).get_columns("incidents")}
        assert "backfilled" not in columns
        with pytest.raises(IntegrityError), engine.begin() as connection:
            connection.execute(text(
                "INSERT INTO incidents (id, point_id, gateway, type, severity, state, alarm, "
                "opened_at, last_seen_at, count, message, first_event_id, state_changed_at) "
                "SELECT '01J00000000000000000000002', point_id, gateway, type, severity, "
                "'accepted', alarm, opened_at, last_seen_at, count, message, first_event_id, "
                "state_changed_at FROM incidents"))
    finally:
        engine.dispose()


def test_one_open_incident_per_point_and_type_is_enforced_by_the_database(db_url: str) -> None:
    engine = make_engine(db_url)
    upgrade(engine)
    factory = make_session_factory(engine)
    try:
        with factory.begin() as session:
            _add_incident(session, "01J00000000000000000000001", "closed")
            _add_incident(session, "01J00000000000000000000002", "new")
        with pytest.raises(IntegrityError), factory.begin() as session:
            _add_incident(session, "01J00000000000000000000003", "accepted")
        with factory() as session:
            stored = session.get(Incident, "01J00000000000000000000002")
            assert stored is not None and stored.opened_at == NOW  # UTC-aware on both DBs
            assert stored.backfilled is False
    finally:
        engine.dispose()


def test_0006_renames_the_paging_steps_of_existing_rows_and_back(db_url: str) -> None:
    """Steps stored as ``a.<index>@<ms>`` become ``page.<index>@<ms>`` in both tables that key
    on them; other kinds are left alone, and the downgrade restores the old names."""
    engine = make_engine(db_url)
    factory = make_session_factory(engine)
    incident_id = "01J00000000000000000000001"
    try:
        upgrade(engine, "0005")
        with factory.begin() as session:
            _add_incident(session, incident_id, "new")
            for step in ("a.1@1733000000000", "remind@1733000000000"):
                session.add(EscalationStep(incident_id=incident_id, step=step, loop=0,
                                           due_at=NOW, status="pending"))
            session.add(Notification(incident_id=incident_id, step="a.1@1733000000000", loop=0,
                                     recipient="worker-g01", channel="app", title="t", body="b",
                                     status="sent", attempts=1, next_attempt_at=NOW,
                                     created_at=NOW))

        def steps() -> tuple[list[str], list[str]]:
            with factory() as session:
                return (sorted(session.scalars(select(EscalationStep.step))),
                        list(session.scalars(select(Notification.step))))

        upgrade(engine)
        assert steps() == (["page.1@1733000000000", "remind@1733000000000"],
                           ["page.1@1733000000000"])
        downgrade(engine, "0005")
        assert steps() == (["a.1@1733000000000", "remind@1733000000000"],
                           ["a.1@1733000000000"])
    finally:
        engine.dispose()


def test_0009_adds_the_web_trust_tables_and_its_downgrade_removes_them(db_url: str) -> None:
    web_tables = {"web_sessions", "throttle", "audit_log"}
    engine = make_engine(db_url)
    try:
        upgrade(engine, "0008")
        assert not web_tables & set(inspect(engine).get_table_names())
        upgrade(engine)
        assert web_tables <= set(inspect(engine).get_table_names())
        downgrade(engine, "0008")
        assert current_revision(engine) == "0008"
        assert not web_tables & set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
