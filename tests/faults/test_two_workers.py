"""The fault drills with two server processes on one PostgreSQL database, sharing the stream
through one share group (MQTT 5 shared subscriptions on Mosquitto). The worker's phone is
connected to the second process. Afterwards, as in test_faults.py: nothing lost, nothing
doubled, every incident paged once."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_faults import STEADY_S, assert_nothing_lost, settle
from ulid import ULID

from gridsense_devtools.processes import wait_until

from fault_stack import Stack

PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.timeout(600)]


@pytest.fixture
def pg_url() -> Iterator[str]:
    psycopg = pytest.importorskip("psycopg")
    try:
        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL at 127.0.0.1:5432 is unreachable: {exc}")
    name = f"gs_faults_{str(ULID()).lower()}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture
def two_workers(tmp_path: Path, pg_url: str) -> Iterator[Stack]:
    running = Stack(tmp_path, shared=True, workers=2, db_url=pg_url).start()
    try:
        wait_until(running.flowing, 60, "readings from every point in InfluxDB")
        yield running
    finally:
        running.stop()


def test_broker_restarted_under_two_workers(two_workers: Stack) -> None:
    stack = two_workers
    settle(stack, STEADY_S)
    stack.broker.stop()
    time.sleep(8)
    stack.broker.start()
    settle(stack, STEADY_S)
    assert_nothing_lost(stack, max_gap_s=3)


def test_one_of_two_workers_killed_mid_stream(two_workers: Stack) -> None:
    """kill -9 of the first worker: what it had taken but not settled stays unconfirmed at the
    gateway and comes again (to the other worker, or to it once restarted)."""
    stack = two_workers
    settle(stack, STEADY_S)
    assert stack.server is not None
    stack.server.kill9()
    settle_without_first(stack, 6)
    stack.start_server(0)
    settle(stack, STEADY_S)
    assert_nothing_lost(stack, max_gap_s=3)


def settle_without_first(stack: Stack, seconds: float) -> None:
    """The stream goes on through the second worker alone meanwhile."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        dead = [name for name in stack.dead() if name != "server"]
        assert not dead, f"{', '.join(dead)} died\n{stack.procs.logs()}"
        time.sleep(0.5)
