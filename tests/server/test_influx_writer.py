"""The InfluxDB writer against a real InfluxDB: batching, escaping, rejected batches, outages."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from server_helpers import async_wait_until

from gridsense_devtools.ports import free_port
from gridsense_devtools.services import InfluxDB
from gridsense_protocol import AccessEvent, AccessResult, Reading
from gridsense_server.access_control.log import access_line
from gridsense_server.backoff import Backoff
from gridsense_server.config import InfluxConfig
from gridsense_server.counters import Counters
from gridsense_server.registry.directory import PointDirectory
from gridsense_server.timeseries.line_protocol import (
    LineFormatter,
    escape_tag,
    grid_tag,
    timestamp_ns,
)
from gridsense_server.timeseries.writer import InfluxWriter

T0 = datetime(2024, 5, 1, 8, 0, 0, 123456, tzinfo=UTC)


def readings(point: str, n: int, start: float = 20.0, metric: str = "temperature") -> list[Reading]:
    return [
        Reading(point=point, metric=metric, value=start + i, unit="°C",
                ts=T0 + timedelta(seconds=i))
        for i in range(n)
    ]


def make_writer(url: str, database: str, counters: Counters, *, batch_size: int = 1000,
                grids: dict[str, str] | None = None, **kwargs: object) -> InfluxWriter:
    config = InfluxConfig(url=url, database=database, batch_size=batch_size,
                          flush_interval_s=60)  # only size and explicit flushes seal batches
    return InfluxWriter(config, PointDirectory(grids or {"gw-01.boiler": "g01-a"}), counters,
                        backoff=Backoff(initial_s=0.05, cap_s=0.5), **kwargs)


def test_escape_tag_follows_line_protocol_rules() -> None:
    assert escape_tag("g01") == "g01"
    assert escape_tag("a b,c=d") == r"a\ b\,c\=d"
    assert escape_tag("line\nbreak") == r"line\ break"
    assert escape_tag("ends\\") == "ends\\\\"
    assert grid_tag("g 01") == r"g\ 01"
    assert grid_tag(None) == grid_tag("") == "unassigned"


def test_lines_carry_edge_timestamps_in_ns_and_sorted_tags() -> None:
    formatter = LineFormatter({"gw-01.boiler": "g01-a"}.get)
    lines, unknown = formatter.format("gw-01", readings("gw-01.boiler", 1, start=22.5))
    assert lines == [
        f"temperature,gateway=gw-01,grid=g01-a,point=gw-01.boiler value=22.5 {timestamp_ns(T0)}"
    ]
    assert timestamp_ns(T0) == 1714550400_123456_000
    assert unknown == []
    lines, unknown = formatter.format("gw-01", readings("gw-09.x", 1))
    assert ",grid=unassigned," in lines[0] and unknown == ["gw-09.x"]


async def test_batches_by_size_and_writes_every_reading_with_its_tags(
    influx: tuple[InfluxDB, str],
) -> None:
    server, database = influx
    counters = Counters()
    writer = make_writer(server.url, database, counters, batch_size=3)
    await writer.start()
    try:
        for reading in readings("gw-01.boiler", 10):  # one message each
            writer.add_readings("gw-01", [reading])
        writer.add_readings("gw-01", readings("gw-09.unregistered", 1))
        await writer.flush()
    finally:
        await writer.stop()
    assert counters.get("influx.written_lines") == 11
    assert counters.get("influx.written_batches") == 4  # 3 + 3 + 3 + (1 + 1 flushed)
    assert counters.get("influx.unknown_point_readings") == 1
    rows = server.points("SELECT value, gateway, grid, point FROM temperature", database)
    registered = [r for r in rows if r["point"] == "gw-01.boiler"]
    assert [r["value"] for r in registered] == [20.0 + i for i in range(10)]
    assert registered[0]["time"] == timestamp_ns(T0)  # the edge's time, not arrival
    assert {r["grid"] for r in registered} == {"g01-a"}
    assert {r["gateway"] for r in rows} == {"gw-01"}
    [unknown] = [r for r in rows if r["point"] == "gw-09.unregistered"]
    assert unknown["grid"] == "unassigned"


async def test_an_access_event_at_a_point_with_no_grid_is_tagged_unassigned_like_a_reading(
    influx: tuple[InfluxDB, str],
) -> None:
    server, database = influx
    counters = Counters()
    writer = make_writer(server.url, database, counters)
    event = AccessEvent(gateway="gw-09", seq=1, ts=T0, point="gw-09.reader", door="b9-main",
                        result=AccessResult.GRANTED, method="card")
    await writer.start()
    try:
        writer.add_lines([access_line(event, None)])
        writer.add_readings("gw-09", readings("gw-09.reader", 1))
        await writer.flush()
    finally:
        await writer.stop()
    assert counters.get("influx.rejected_batches") == 0
    [access] = server.points('SELECT "count", "grid", "door" FROM "access"', database)
    assert (access["grid"], access["door"], access["count"]) == ("unassigned", "b9-main", 1)
    [reading] = server.points("SELECT value, grid FROM temperature", database)
    assert reading["grid"] == "unassigned"


async def test_tag_values_with_spaces_commas_and_equals_round_trip(
    influx: tuple[InfluxDB, str],
) -> None:
    server, database = influx
    counters = Counters()
    awkward = "g 01,a=b"
    writer = make_writer(server.url, database, counters, grids={"gw-01.boiler": awkward})
    await writer.start()
    try:
        writer.add_readings("gw-01", readings("gw-01.boiler", 2))
        await writer.flush()
    finally:
        await writer.stop()
    rows = server.points("SELECT value, grid FROM temperature", database)
    assert [r["grid"] for r in rows] == [awkward, awkward]
    assert counters.get("influx.rejected_batches") == 0


async def test_a_rejected_batch_is_counted_and_the_next_batches_still_land(
    influx: tuple[InfluxDB, str],
) -> None:
    server, database = influx
    counters = Counters()
    writer = make_writer(server.url, database, counters, batch_size=2)
    await writer.start()
    try:
        # The field is already an integer in this shard: floats conflict (partial write 400).
        writer.add_lines([f"humidity,point=x value=1i {timestamp_ns(T0)}"])
        await writer.flush()
        writer.add_readings("gw-01", readings("gw-01.boiler", 2, metric="humidity"))
        await writer.flush()
        writer.add_lines(["this is not line protocol"])  # 400 unable to parse, whole batch
        await writer.flush()
        writer.add_readings("gw-01", readings("gw-01.boiler", 4))
        await writer.flush()
    finally:
        await writer.stop()
    assert counters.get("influx.rejected_batches") == 2
    assert counters.get("influx.rejected_lines") == 3
    assert counters.get("influx.written_lines") == 1 + 4
    rows = server.points("SELECT value FROM temperature", database)
    assert [r["value"] for r in rows] == [20.0, 21.0, 22.0, 23.0]


async def test_influx_down_then_up_writes_everything_in_order(tmp_path: Path) -> None:
    """Connection refused at start (no database yet) and during writes; nothing lost."""
    port = free_port()
    counters = Counters()
    writer = make_writer(f"http://127.0.0.1:{port}", "outage", counters, batch_size=5)
    await writer.start()
    # Two batches write the SAME series and timestamps with different values: InfluxDB keeps
    # the last write, so the stored values show the batches went in order.
    writer.add_readings("gw-01", readings("gw-01.boiler", 5, start=100.0))
    writer.add_readings("gw-01", readings("gw-01.boiler", 5, start=200.0))
    writer.add_readings("gw-01", readings("gw-01.pump", 7))
    await async_wait_until(lambda: counters.get("influx.connect_errors") >= 3,
                           what="writes refused while InfluxDB is down")
    assert counters.get("influx.written_lines") == 0
    server = InfluxDB(tmp_path / "influx", port).start()
    try:
        await asyncio.wait_for(writer.flush(), 60)
        assert counters.get("influx.written_lines") == 17
        rows = server.points("SELECT value FROM temperature WHERE point='gw-01.boiler'", "outage")
        assert [r["value"] for r in rows] == [200.0 + i for i in range(5)]
        pump = server.points("SELECT value FROM temperature WHERE point='gw-01.pump'", "outage")
        assert len(pump) == 7
    finally:
        await writer.stop()
        server.stop()


async def test_a_hung_influx_is_retried_after_the_timeout(influx: tuple[InfluxDB, str]) -> None:
    server, database = influx
    counters = Counters()
    writer = make_writer(server.url, database, counters, batch_size=2, request_timeout_s=1.0)
    await writer.start()
    try:
        writer.add_readings("gw-01", readings("gw-01.boiler", 2))
        await writer.flush()
        server.pause()
        writer.add_readings("gw-01", readings("gw-01.boiler", 6, start=40.0)[2:])
        await async_wait_until(lambda: counters.get("influx.connect_errors") >= 1,
                               what="a write timing out against the paused InfluxDB")
        server.resume()
        await asyncio.wait_for(writer.flush(), 60)
    finally:
        server.resume()
        await writer.stop()
    rows = server.points("SELECT value FROM temperature", database)
    assert [r["value"] for r in rows] == [20.0, 21.0, 42.0, 43.0, 44.0, 45.0]


@pytest.mark.parametrize("n", [1, 2000])
def test_formatting_is_pure_and_cached(n: int) -> None:
    formatter = LineFormatter({"gw-01.boiler": "g01"}.get)
    first, _ = formatter.format("gw-01", readings("gw-01.boiler", n))
    second, _ = formatter.format("gw-01", readings("gw-01.boiler", n))
    assert first == second and len(first) == n
