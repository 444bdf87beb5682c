"""A message that passes decode but that no store can take must not stall ingest."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from server_helpers import EdgePublisher, async_wait_until

from gridsense_devtools.services import InfluxDB
from gridsense_protocol import Kind, encode, topic_for
from gridsense_server.app import ServerApp

T0 = datetime(2024, 5, 1, 8, 0, 0, tzinfo=UTC)


def _rows(influx: tuple[InfluxDB, str], point: str) -> list[dict]:
    server, database = influx
    return server.points(f"SELECT value FROM temperature WHERE point='{point}'", database)


async def test_a_seq_beyond_64_bits_is_refused_and_ingest_goes_on(
    running_server: ServerApp, edge: EdgePublisher, influx: tuple[InfluxDB, str]
) -> None:
    poison = json.loads(encode(edge.telemetry([("gw-01.boiler", "temperature", 1.0, T0)])))
    poison["seq"] = 2**63  # valid JSON, once a valid message: the seq column cannot hold it
    edge.publish_raw(topic_for("gw-01", Kind.TELEMETRY), json.dumps(poison).encode())
    edge.publish(edge.telemetry([("gw-01.boiler", "temperature", 30.0, T0)]))
    [row] = await async_wait_until(lambda: _rows(influx, "gw-01.boiler"),
                                   what="the valid message after the poison one")
    assert row["value"] == 30.0
    await async_wait_until(lambda: running_server.counters.get("ingest.settled") >= 1)
    assert running_server.counters.get("ingest.invalid.bad_field") == 1
