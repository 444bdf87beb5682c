"""Fixtures for the server tests: databases (SQLite and PostgreSQL), a registry, a running server.

PostgreSQL: one uniquely named database per test session (dropped after), and one schema per
test inside it (selected through the URL's search_path), so tests never see each other's rows.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from server_helpers import REGISTRY_YAML, EdgePublisher, async_wait_until, write_server_config
from sqlalchemy.orm import Session, sessionmaker
from ulid import ULID

from gridsense_devtools.services import InfluxDB, Mosquitto
from gridsense_server.app import ServerApp
from gridsense_server.config import load_server_config
from gridsense_server.db import make_engine, make_session_factory, upgrade

PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
PG_SQLALCHEMY = "postgresql+psycopg://postgres@127.0.0.1:5432/{db}?options=-csearch_path%3D{schema}"


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A database of this test session's own; skips if the machine's PostgreSQL is down."""
    psycopg = pytest.importorskip("psycopg")
    try:
        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL at 127.0.0.1:5432 is unreachable: {exc}")
    name = f"gs_test_{str(ULID()).lower()}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture
def pg_url(pg_database: str) -> Iterator[str]:
    import psycopg

    schema = f"t_{str(ULID()).lower()}"
    with psycopg.connect(PG_ADMIN_URL.replace("/test", f"/{pg_database}"),
                         autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    yield PG_SQLALCHEMY.format(db=pg_database, schema=schema)
    with psycopg.connect(PG_ADMIN_URL.replace("/test", f"/{pg_database}"),
                         autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state' / 'server.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def migrated_factory(db_url: str) -> Iterator[sessionmaker[Session]]:
    """Sessions on ``db_url``, migrated to the head revision (no registry, no server)."""
    engine = make_engine(db_url)
    upgrade(engine)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def registry_file(tmp_path: Path) -> Path:
    path = tmp_path / "registry.yaml"
    path.write_text(REGISTRY_YAML, encoding="utf-8")
    return path


ServerFactory = Callable[..., Awaitable[ServerApp]]


@pytest.fixture
async def start_server(
    request: pytest.FixtureRequest, tmp_path: Path, mosquitto: Mosquitto,
    influx: tuple[InfluxDB, str], registry_file: Path,
) -> AsyncIterator[ServerFactory]:
    """Start the whole server in this test's event loop (real broker, InfluxDB, SQLite,
    uvicorn on a free port); ``wait_mqtt=False`` when the broker is meant to be down."""
    if "db_url" in request.fixturenames:
        # Set the database up first so it is torn down last: a PostgreSQL schema dropped
        # under a running server deadlocks with the server's own queries.
        request.getfixturevalue("db_url")
    server, database = influx
    running: list[tuple[asyncio.Event, asyncio.Task[None]]] = []

    async def start(*, wait_mqtt: bool = True, **overrides: Any) -> ServerApp:
        options: dict[str, Any] = {"mqtt_port": mosquitto.port, "influx_url": server.url,
                                   "database": database}
        options.update(overrides)
        app = ServerApp(load_server_config(write_server_config(tmp_path, **options)))
        stop = asyncio.Event()
        task = asyncio.create_task(app.run(stop))
        running.append((stop, task))
        ready = asyncio.create_task(app.ready.wait())
        await asyncio.wait({task, ready}, timeout=60, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            task.result()  # raises the start-up error
        assert app.ready.is_set(), "server did not start"
        if wait_mqtt:
            await wait_subscribed(app)
        return app

    yield start
    for stop, task in running:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 60)


async def wait_subscribed(app: ServerApp) -> None:
    await async_wait_until(app.mqtt_subscribed, 30, "server subscribed on MQTT")


@pytest.fixture
async def running_server(start_server: ServerFactory) -> ServerApp:
    return await start_server()


@pytest.fixture
def edge(mosquitto: Mosquitto) -> Iterator[EdgePublisher]:
    publisher = EdgePublisher(mosquitto.port)
    yield publisher
    publisher.close()
