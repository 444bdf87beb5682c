"""The hand-written migrations build exactly the models' schema, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from gridsense_server.db import make_engine
from gridsense_server.db.migrate import current_revision, downgrade, upgrade
from gridsense_server.db.models import Base

TABLES = {
    "streets", "communities", "grids", "points", "staff", "staff_grids", "incidents",
    "incident_events", "gateways",
}


def test_upgrade_matches_the_models_and_downgrade_undoes_it(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        assert current_revision(engine) is None
        upgrade(engine)
        assert current_revision(engine) == "0001"
        assert set(inspect(engine).get_table_names()) >= TABLES
        with engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
        assert differences == []

        upgrade(engine)  # idempotent: already at head
        assert current_revision(engine) == "0001"

        downgrade(engine)
        assert not TABLES & set(inspect(engine).get_table_names())
        upgrade(engine)
        assert current_revision(engine) == "0001"
    finally:
        engine.dispose()


def test_one_open_incident_per_point_and_type_is_enforced_by_the_database(db_url: str) -> None:
    from datetime import UTC, datetime

    import pytest
    from sqlalchemy.exc import IntegrityError

    from gridsense_server.db import make_session_factory
    from gridsense_server.db.models import Incident

    engine = make_engine(db_url)
    upgrade(engine)
    factory = make_session_factory(engine)
    now = datetime.now(UTC)

    def incident(id_: str, state: str) -> Incident:
        return Incident(
            id=id_, point_id="p1", grid_id=None, gateway="gw", type="over_temperature",
            severity="major", state=state, alarm="active", opened_at=now, last_seen_at=now,
            count=1, value=None, message="", first_event_id=id_, state_changed_at=now,
        )

    try:
        with factory.begin() as session:
            session.add(incident("01J00000000000000000000001", "closed"))
            session.add(incident("01J00000000000000000000002", "new"))
        with pytest.raises(IntegrityError), factory.begin() as session:
            session.add(incident("01J00000000000000000000003", "accepted"))
        with factory() as session:
            stored = session.get(Incident, "01J00000000000000000000002")
            assert stored is not None and stored.opened_at == now  # UTC-aware on both DBs
    finally:
        engine.dispose()
