"""kill -9 of the server (a real process) against a real broker and InfluxDB: the persistent
session keeps what was published meanwhile, nothing is acknowledged before it is durable, and
afterwards every reading is in InfluxDB exactly once with no sequence gaps (per the checker)."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from server_helpers import REGISTRY_YAML, EdgePublisher, wait_until, write_server_config

from gridsense_devtools.ports import free_port
from gridsense_devtools.server_process import ServerProcess, run_check
from gridsense_devtools.services import InfluxDB, Mosquitto
from gridsense_edge.transport.confirmations import Confirmations
from gridsense_edge.transport.outbox import SqliteOutbox
from gridsense_edge.transport.publisher import Publisher
from gridsense_edge.transport.uplink import Uplink
from gridsense_protocol import Reading, Telemetry, utc_now

POINTS = ("gw-01.boiler", "gw-01.pump")


def setup_server(tmp_path: Path, broker: Mosquitto, influx_url: str, database: str,
                 **options: object) -> ServerProcess:
    (tmp_path / "registry.yaml").write_text(REGISTRY_YAML, encoding="utf-8")
    http_port = free_port()
    config = write_server_config(tmp_path, mqtt_port=broker.port, influx_url=influx_url,
                                 database=database, http_port=http_port, **options)
    return ServerProcess(config, http_port, tmp_path / "server.log")


def readings_at(start: datetime, n: int) -> list[Reading]:
    """One reading per point at device time start + n seconds."""
    ts = start + timedelta(seconds=n)
    return [Reading(point=p, metric="temperature", value=20.0 + n % 7, unit="°C", ts=ts)
            for p in POINTS]


def telemetry(edge: EdgePublisher, start: datetime, n: int) -> Telemetry:
    return Telemetry(gateway=edge.gateway, seq=edge.next_seq(), ts=utc_now(),
                     readings=readings_at(start, n))


def count_readings(influx: tuple[InfluxDB, str]) -> int:
    server, database = influx
    rows = server.points('SELECT count("value") FROM "temperature"', database)
    return int(rows[0]["count"]) if rows else 0


def check_window(start: datetime, n: int) -> list[str]:
    return ["--gateway", "gw-01", "--since", start.isoformat(),
            "--until", (start + timedelta(seconds=n - 1)).isoformat(), "--max-gap", "1.5"]


@pytest.mark.parametrize("shared", [False, True], ids=["plain", "shared"])
def test_kill9_mid_stream_then_restart_every_reading_once_and_no_gaps(
    tmp_path: Path, mosquitto: Mosquitto, influx: tuple[InfluxDB, str], shared: bool
) -> None:
    server = setup_server(tmp_path, mosquitto, influx[0].url, influx[1], shared=shared,
                          late_after_s=3600).start()
    start = utc_now().replace(microsecond=0) - timedelta(seconds=600)
    total = 400
    edge = EdgePublisher(mosquitto.port)
    published = threading.Event()
    progress = [0]

    def stream() -> None:  # a steady stream, publishing on while the server is dead
        for n in range(total):
            edge.publish(telemetry(edge, start, n))
            if n % 100 == 50:
                edge.publish(edge.incident("gw-01.boiler", ts=utc_now()))
            progress[0] = n + 1
        published.set()

    publisher = threading.Thread(target=stream, daemon=True)
    try:
        publisher.start()
        wait_until(lambda: server.counter("ingest.received.telemetry") >= total // 4, 60,
                   "a quarter of the stream ingested")
        server.kill9()
        died_at = progress[0]
        wait_until(lambda: progress[0] >= min(total, died_at + 50), 60,
                   "messages published while the server is dead")
        server.start()
        wait_until(published.is_set, 120, "the whole stream published")
        wait_until(lambda: count_readings(influx) >= total * len(POINTS), 120,
                   "every reading in InfluxDB")
        wait_until(lambda: (server.health() or {}).get("ingest.unacked") == 0, 60,
                   "everything acknowledged")
    finally:
        edge.close()
        server.stop()
    assert count_readings(influx) == total * len(POINTS)  # exactly once (point identity)
    code, report, stderr = run_check(server.config, *check_window(start, total))
    assert code == 0, (report, stderr)
    [gateway] = report["gateways"]
    assert gateway["seq_first"] == 1 and gateway["seq_last"] == edge.seq
    assert gateway["seq_gaps"] == 0 and gateway["received"] == edge.seq
    assert {p["point"]: p["readings"] for p in report["points"]} == dict.fromkeys(POINTS, total)
    assert report["incidents"]["opened"] == 1  # repeats append to the one open incident
    assert report["incidents"]["events"] == total // 100


def test_without_spool_influx_unreachable_nothing_is_acked_and_a_kill9_loses_nothing(
    tmp_path: Path, mosquitto: Mosquitto, influx: tuple[InfluxDB, str]
) -> None:
    dead_influx = f"http://127.0.0.1:{free_port()}"
    server = setup_server(tmp_path, mosquitto, dead_influx, influx[1], spool_max_mb=0).start()
    start = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
    edge = EdgePublisher(mosquitto.port)
    try:
        for n in range(20):
            edge.publish(telemetry(edge, start, n))
        wait_until(lambda: server.counter("ingest.received.telemetry") == 20, 30,
                   "the messages received")
        health = server.health() or {}
        assert health["ingest.unacked"] == 20 and health.get("mqtt.acks", 0) == 0
        server.kill9()
        # Back with InfluxDB reachable: the broker redelivers the unacknowledged messages.
        server.config.write_text(server.config.read_text().replace(dead_influx, influx[0].url))
        server.start()
        wait_until(lambda: count_readings(influx) == 20 * len(POINTS), 60,
                   "the redelivered readings in InfluxDB")
        wait_until(lambda: (server.health() or {}).get("ingest.unacked") == 0, 30, "acked")
    finally:
        edge.close()
        server.stop()
    code, report, stderr = run_check(server.config, *check_window(start, 20))
    assert code == 0, (report, stderr)
    assert report["gateways"][0]["received"] == 20


def test_influx_unreachable_readings_are_spooled_acked_and_survive_a_kill9(
    tmp_path: Path, mosquitto: Mosquitto, influx: tuple[InfluxDB, str]
) -> None:
    dead_influx = f"http://127.0.0.1:{free_port()}"
    server = setup_server(tmp_path, mosquitto, dead_influx, influx[1],
                          spool_after_s=0.2).start()
    start = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
    edge = EdgePublisher(mosquitto.port)
    try:
        for n in range(30):
            edge.publish(telemetry(edge, start, n))
        wait_until(lambda: (server.health() or {}).get("influx.spool_lines") == 60, 30,
                   "the readings in the spool")
        wait_until(lambda: (server.health() or {}).get("ingest.unacked") == 0, 30,
                   "spooled readings acknowledged")
        server.kill9()
        server.config.write_text(server.config.read_text().replace(dead_influx, influx[0].url))
        server.start()
        wait_until(lambda: count_readings(influx) == 30 * len(POINTS), 60,
                   "the spool written to InfluxDB after the restart")
        assert server.counter("ingest.received.telemetry") == 0  # not redelivered: acked
        assert not list((tmp_path / "state" / "spool").glob("*.seg"))  # drained
    finally:
        edge.close()
        server.stop()
    code, report, stderr = run_check(server.config, *check_window(start, 30))
    assert code == 0, (report, stderr)


@pytest.mark.parametrize("shared", [False, True], ids=["plain", "shared"])
async def test_messages_published_after_a_broker_restart_wait_for_the_server(
    tmp_path: Path, influx: tuple[InfluxDB, str], shared: bool
) -> None:
    """Mosquitto 2.0 does not restore an offline session's shared subscriptions after a broker
    restart: what the gateway publishes before the server is back is dropped. The gateway's real
    uplink keeps each message until the server confirms it (end-to-end acknowledgement) and
    sends again what stays unconfirmed, so it all arrives, once, shared or not."""
    broker = Mosquitto(tmp_path / "mosquitto", free_port(), persistence=True).start()
    server = setup_server(tmp_path, broker, influx[0].url, influx[1], shared=shared,
                          late_after_s=3600).start()
    start = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
    outbox = SqliteOutbox(tmp_path / "edge")
    publisher = Publisher("gw-01", outbox)
    uplink = Uplink("gw-01", "127.0.0.1", broker.port, outbox, publisher.status,
                    acknowledgement="server", confirmations=Confirmations(1.0, 2.0))
    outbox.on_stored = uplink.notify
    try:
        server.kill9()
        broker.stop()  # saves the server's session (persistence)
        broker.start()
        await uplink.start()
        for n in range(10):
            publisher.telemetry(readings_at(start, n))
        outbox.flush()
        await asyncio.to_thread(wait_until, lambda: uplink.counters["published"] >= 11, 30,
                                "the birth and the 10 messages taken by the broker")
        assert outbox.depth == 10  # the broker has them, the server not: all kept
        server.start()
        await asyncio.to_thread(wait_until, lambda: count_readings(influx) == 10 * len(POINTS),
                                60, "the messages published while the server was down")
        await asyncio.to_thread(wait_until, lambda: outbox.depth == 0, 30,
                                "every message confirmed by the server and deleted")
        assert server.counter("ingest.received.telemetry") >= 10
        if shared:  # dropped by the broker: what arrived are the gateway's re-sends
            assert outbox.counters["resent"] >= 10
    finally:
        await uplink.stop()
        outbox.close()
        server.stop()
        broker.stop()
    assert count_readings(influx) == 10 * len(POINTS)  # exactly once (point identity)
    code, report, stderr = run_check(server.config, *check_window(start, 10))
    assert code == 0, (report, stderr)
    [gateway] = report["gateways"]
    assert gateway["seq_gaps"] == 0 and gateway["received"] == 10


def test_a_graceful_stop_acknowledges_everything_it_took(
    tmp_path: Path, mosquitto: Mosquitto, influx: tuple[InfluxDB, str]
) -> None:
    server = setup_server(tmp_path, mosquitto, influx[0].url, influx[1],
                          flush_interval_s=30).start()  # only the stop flushes
    start = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
    edge = EdgePublisher(mosquitto.port)
    try:
        for n in range(5):
            edge.publish(telemetry(edge, start, n))
        wait_until(lambda: server.counter("ingest.received.telemetry") == 5, 30, "received")
        assert server.stop() == 0
        assert count_readings(influx) == 5 * len(POINTS)
        server.start()
        # Messages of one session arrive in order, redeliveries first: once the marker is
        # in, anything left unacknowledged by the first run would have come before it.
        edge.publish(telemetry(edge, start, 5))
        wait_until(lambda: server.counter("ingest.received.telemetry") >= 1, 30, "the marker")
        assert server.counter("ingest.received.telemetry") == 1
        assert server.counter("mqtt.dup_deliveries") == 0
    finally:
        edge.close()
        server.stop()
    assert "level=error" not in server.log_path.read_text(), server.log()
