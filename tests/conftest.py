"""Fixtures shared by every test: private Mosquitto and InfluxDB on free ports in temp dirs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from ulid import ULID

from gridsense_devtools.nats_cluster import NatsCluster
from gridsense_devtools.ports import free_port
from gridsense_devtools.services import InfluxDB, Mosquitto

REPO = Path(__file__).resolve().parent.parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Longest slow tests first: under pytest-xdist (scripts/test runs two workers) the
    ten-minute uplink cut then overlaps the rest of the suite instead of trailing it."""

    def expected_length(item: pytest.Item) -> float:
        if item.get_closest_marker("slow") is None:
            return 0.0
        timeout = item.get_closest_marker("timeout")
        return float(timeout.args[0]) if timeout is not None and timeout.args else 1.0

    items.sort(key=expected_length, reverse=True)  # stable: the rest keep their order


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    """A broker of this test's own; it can be stopped, killed or paused by the test."""
    broker = Mosquitto(tmp_path / "mosquitto", free_port()).start()
    yield broker
    broker.resume()
    broker.stop()


@pytest.fixture
def nats_cluster(tmp_path: Path) -> Iterator[NatsCluster]:
    """Three nats-server nodes of this test's own (JetStream, MQTT 3.1.1 on each)."""
    cluster = NatsCluster(tmp_path / "nats").start()
    yield cluster
    cluster.stop()


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
