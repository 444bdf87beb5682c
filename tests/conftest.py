"""Fixtures shared by every test: private Mosquitto and InfluxDB on free ports in temp dirs."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from ulid import ULID

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))

from devservices import InfluxDB, Mosquitto, free_port  # noqa: E402


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    """A broker of this test's own; it can be stopped, killed or paused by the test."""
    broker = Mosquitto(tmp_path / "mosquitto", free_port()).start()
    yield broker
    broker.resume()
    broker.stop()


@pytest.fixture(scope="session")
def influxdb_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxDB]:
    server = InfluxDB(tmp_path_factory.mktemp("influxdb"), free_port()).start()
    yield server
    server.resume()
    server.stop()


@pytest.fixture
def influx(influxdb_server: InfluxDB) -> Iterator[tuple[InfluxDB, str]]:
    """The shared InfluxDB server and a database name of this test's own (dropped after)."""
    if not influxdb_server.running:  # a fault test may have stopped it
        influxdb_server.start()
    database = f"test_{str(ULID()).lower()}"
    influxdb_server.create_database(database)
    yield influxdb_server, database
    influxdb_server.resume()
    if influxdb_server.running:
        influxdb_server.drop_database(database)


@pytest.fixture
def repo_root() -> Path:
    return REPO
