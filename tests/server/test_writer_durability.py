"""The writer acknowledges readings only once they are durable: written to InfluxDB, or synced
to the disk spool when InfluxDB does not take them in time — and the spool is written back in
order when InfluxDB returns."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from server_helpers import async_wait_until

from gridsense_devtools.ports import free_port
from gridsense_devtools.services import InfluxDB
from gridsense_protocol import Reading
from gridsense_server.acks import INFLUX_LINES, AckLedger, AckToken, Effects, InboundMessage
from gridsense_server.backoff import Backoff
from gridsense_server.config import InfluxConfig
from gridsense_server.counters import Counters
from gridsense_server.registry.directory import PointDirectory
from gridsense_server.timeseries.spool import DiskSpool
from gridsense_server.timeseries.writer import InfluxWriter

T0 = datetime(2024, 5, 1, 8, 0, 0, tzinfo=UTC)


class Acks:
    """A ledger whose acks land in a list (no broker needed to watch what gets acked)."""

    def __init__(self) -> None:
        self.acked: list[AckToken] = []
        self.ledger = AckLedger(self.acked.extend, lambda: 1, self._settle)
        self._mid = 0

    def _settle(self, message: InboundMessage) -> None:
        self.ledger.settled(message)

    def message(self) -> InboundMessage:
        self._mid += 1
        message = InboundMessage(None, (1, self._mid, 1))
        self.ledger.register(message, Effects(INFLUX_LINES))
        return message


def readings(point: str, n: int, start: float, offset_s: int = 0) -> list[Reading]:
    return [Reading(point=point, metric="temperature", value=start + i, unit="°C",
                    ts=T0 + timedelta(seconds=offset_s + i)) for i in range(n)]


def make_writer(url: str, database: str, counters: Counters, spool: DiskSpool | None = None,
                spool_after_s: float = 0.3, **kwargs: object) -> InfluxWriter:
    config = InfluxConfig(url=url, database=database, batch_size=10, flush_interval_s=0.1,
                          spool_after_s=spool_after_s)
    return InfluxWriter(config, PointDirectory({"gw-01.boiler": "g01-a"}), counters,
                        spool=spool, backoff=Backoff(initial_s=0.05, cap_s=0.3), **kwargs)


def values(server: InfluxDB, database: str) -> list[float]:
    return [r["value"] for r in server.points("SELECT value FROM temperature", database)]


async def test_without_a_spool_readings_are_acked_only_once_influx_took_them(
    tmp_path: Path,
) -> None:
    port = free_port()
    counters = Counters()
    acks = Acks()
    writer = make_writer(f"http://127.0.0.1:{port}", "noack", counters)
    await writer.start()
    try:
        for m in range(5):
            writer.add_readings("gw-01", readings("gw-01.boiler", 3, 10.0 * m, 3 * m),
                                acks.message())
        await async_wait_until(lambda: counters.get("influx.connect_errors") >= 3)
        assert acks.acked == []  # InfluxDB has nothing: nothing is acknowledged
        server = InfluxDB(tmp_path / "influx", port).start()
        try:
            await asyncio.wait_for(writer.flush(), 60)
            assert [mid for _, mid, _ in acks.acked] == [1, 2, 3, 4, 5]  # once each, in order
            assert len(values(server, "noack")) == 15
        finally:
            server.stop()
    finally:
        await writer.stop()


async def test_influx_down_readings_are_spooled_acked_and_written_in_order_later(
    tmp_path: Path,
) -> None:
    port = free_port()
    counters = Counters()
    acks = Acks()
    spool = DiskSpool(tmp_path / "spool", max_bytes=10_000_000)
    writer = make_writer(f"http://127.0.0.1:{port}", "spooled", counters, spool)
    await writer.start()
    server = None
    try:
        # The same series and timestamps twice with different values: InfluxDB keeps the last
        # write, so the stored values show the order in which the spool gave them back.
        for m in range(6):
            writer.add_readings("gw-01", readings("gw-01.boiler", 5, 100.0 + m, 0),
                                acks.message())
        await async_wait_until(lambda: len(acks.acked) == 6, 30, "spooled and acknowledged")
        assert counters.get("influx.spooled_lines") == 30
        assert spool.lines == 30 and writer.buffered_lines == 0  # on disk, not in memory
        assert counters.get("influx.written_lines") == 0
        server = InfluxDB(tmp_path / "influx", port).start()
        await asyncio.wait_for(writer.flush(), 60)
        assert values(server, "spooled") == [105.0 + i for i in range(5)]
        assert counters.get("influx.spool_sent_lines") == 30
        assert spool.records == 0
        assert len(acks.acked) == 6  # written later, acknowledged once
    finally:
        await writer.stop()
        spool.close()
        if server is not None:
            server.stop()


async def test_a_paused_influx_does_not_hold_acks_and_the_backlog_lands_when_it_resumes(
    tmp_path: Path,
) -> None:
    server = InfluxDB(tmp_path / "influx", free_port()).start()
    counters = Counters()
    acks = Acks()
    spool = DiskSpool(tmp_path / "spool", max_bytes=10_000_000)
    writer = make_writer(server.url, "paused", counters, spool, request_timeout_s=2.0)
    await writer.start()
    try:
        writer.add_readings("gw-01", readings("gw-01.boiler", 4, 1.0), acks.message())
        await writer.flush()
        assert counters.get("influx.spooled_lines") == 0  # healthy: straight to InfluxDB
        server.pause()
        for m in range(1, 8):
            writer.add_readings("gw-01", readings("gw-01.boiler", 4, 1.0, 4 * m),
                                acks.message())
        await async_wait_until(lambda: len(acks.acked) == 8, 30, "acks while InfluxDB hangs")
        assert counters.get("influx.spooled_lines") > 0
        server.resume()
        await asyncio.wait_for(writer.flush(), 60)
        assert len(values(server, "paused")) == 32
        assert len(acks.acked) == 8
    finally:
        server.resume()
        await writer.stop()
        spool.close()
        server.stop()


async def test_stopping_spools_what_influx_has_not_taken_and_the_next_start_sends_it(
    tmp_path: Path,
) -> None:
    port = free_port()
    counters = Counters()
    acks = Acks()
    spool = DiskSpool(tmp_path / "spool", max_bytes=10_000_000)
    # Only stop() spools: InfluxDB is down and the batch is far from spool_after_s old.
    writer = make_writer(f"http://127.0.0.1:{port}", "restart", counters, spool,
                         spool_after_s=60)
    await writer.start()
    writer.add_readings("gw-01", readings("gw-01.boiler", 3, 7.0), acks.message())
    await writer.stop(flush_timeout=0.5)
    spool.close()
    assert len(acks.acked) == 1 and counters.get("influx.spooled_lines") == 3

    server = InfluxDB(tmp_path / "influx", port).start()
    again = DiskSpool(tmp_path / "spool", max_bytes=10_000_000)
    assert again.lines == 3
    writer = make_writer(server.url, "restart", Counters(), again)
    await writer.start()
    try:
        await asyncio.wait_for(writer.flush(), 60)
        assert values(server, "restart") == [7.0, 8.0, 9.0]
    finally:
        await writer.stop()
        again.close()
        server.stop()


async def test_stopping_without_a_spool_leaves_unwritten_readings_unacknowledged() -> None:
    counters = Counters()
    acks = Acks()
    writer = make_writer(f"http://127.0.0.1:{free_port()}", "nowhere", counters)
    await writer.start()
    writer.add_readings("gw-01", readings("gw-01.boiler", 3, 7.0), acks.message())
    await writer.stop(flush_timeout=0.5)
    assert acks.acked == []  # the broker keeps them and redelivers after the restart
    assert counters.get("influx.unwritten_at_shutdown_lines") == 3
