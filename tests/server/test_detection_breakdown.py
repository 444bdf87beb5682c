"""Detections by object class: a camera point's count arrives as its own untagged reading plus
one reading per class tagged ``class``; InfluxDB keeps them as separate series, and the point's
chart reads the untagged total only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from api_client import Api
from pydantic import ValidationError
from server_helpers import EdgePublisher, async_wait_until

from gridsense_devtools.services import InfluxDB
from gridsense_protocol import Reading, Telemetry, decode, encode, topic_for, utc_now
from gridsense_server.app import ServerApp
from gridsense_server.timeseries.line_protocol import LineFormatter

POINT = "gw-01.boiler"
FRAMES = [{"person": 2, "ebike": 1}, {"person": 1}, {"person": 3, "car": 1}]


def _frame_readings(t: datetime, by_class: dict[str, int]) -> list[Reading]:
    total = Reading(point=POINT, metric="detections", value=float(sum(by_class.values())),
                    unit="objects", ts=t)
    return [total] + [Reading(point=POINT, metric="detections", value=float(n), unit="objects",
                              ts=t, tags={"class": label}) for label, n in by_class.items()]


def test_breakdown_tags_are_a_fixed_set_and_never_the_servers_own() -> None:
    t = utc_now()
    for tags in ({"grid": "g02"}, {"point": "gw-02.x"}, {"colour": "red"},
                 {"class": "two words"}, {"class": ""}):
        with pytest.raises(ValidationError, match="tags"):
            Reading(point=POINT, metric="detections", value=1, unit="", ts=t, tags=tags)
    plain = Reading(point=POINT, metric="detections", value=1, unit="", ts=t, tags={})
    assert plain.tags is None  # empty is the point's own series
    message = Telemetry(gateway="gw-01", seq=1, ts=t, readings=_frame_readings(t, FRAMES[0]))
    assert b'"tags"' in encode(message) and b'"tags":{}' not in encode(message)
    again = decode(topic_for("gw-01", message.kind), encode(message))
    assert again == message


def test_line_protocol_sorts_a_readings_tags_among_the_servers() -> None:
    formatter = LineFormatter(lambda point: "g01-a")
    t = datetime(2026, 1, 1, tzinfo=UTC)
    lines, unknown = formatter.format("gw-01", _frame_readings(t, {"e-bike": 1}))
    assert unknown == []
    assert lines == [
        "detections,gateway=gw-01,grid=g01-a,point=gw-01.boiler value=1.0 1767225600000000000",
        "detections,class=e-bike,gateway=gw-01,grid=g01-a,point=gw-01.boiler value=1.0 "
        "1767225600000000000",
    ]


async def test_classes_are_counted_apart_and_the_chart_reads_the_total(
    running_server: ServerApp, edge: EdgePublisher, influx: tuple[InfluxDB, str],
) -> None:
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    readings = [r for i, frame in enumerate(FRAMES)
                for r in _frame_readings(t0 + timedelta(seconds=i), frame)]
    edge.publish(Telemetry(gateway=edge.gateway, seq=edge.next_seq(), ts=utc_now(),
                           readings=readings))
    await async_wait_until(lambda: running_server.counters.get("influx.written_lines")
                           >= len(readings), 30, "detections written to InfluxDB")

    server, database = influx
    body = server.query(f"SELECT sum(\"value\") FROM detections WHERE point = '{POINT}' "
                        "GROUP BY \"class\"", db=database)
    sums = {series["tags"]["class"]: series["values"][0][1]
            for series in body["results"][0]["series"]}
    assert sums == {"": 8.0, "person": 6.0, "ebike": 1.0, "car": 1.0}

    assert running_server.http_url is not None
    async with httpx.AsyncClient(base_url=running_server.http_url, trust_env=False,
                                 timeout=30) as http:
        reply = await Api(http).as_("control", "GET", f"/api/v1/points/{POINT}/series", params={
            "field": "detections", "step": 3600,
            "from": (t0 - timedelta(hours=1)).isoformat(), "to": utc_now().isoformat()})
    assert reply.status_code == 200, reply.text
    [bucket] = reply.json()["points"]
    assert (bucket["count"], bucket["max"]) == (3, 4.0)  # the totals only, not the classes
