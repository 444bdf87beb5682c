"""What the gateways page reads, on a running server: each gateway's state, agent version,
health figures (CPU, memory, outbox depth, drivers and devices) and configuration version from
real MQTT messages, pushed live on the stream; and sparklines of many points at once from the
real InfluxDB writer, scoped by the caller's grids."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from api_client import Api
from server_helpers import EdgePublisher, async_wait_until
from websockets.asyncio.client import connect

from gridsense_devtools.services import InfluxDB
from gridsense_protocol import (
    CommandResult,
    DriverHealth,
    DriverState,
    GatewayState,
    Health,
    Status,
    new_event_id,
    utc_now,
)
from gridsense_server.app import ServerApp


def _health(edge: EdgePublisher, *, cpu: float, outbox: tuple[int, int]) -> Health:
    return Health(
        gateway=edge.gateway, seq=edge.next_seq(), ts=utc_now(), uptime_s=120.0,
        cpu_percent=cpu, memory_rss_bytes=31_000_000, disk_free_bytes=8 * 10**9,
        drivers={
            "modbus": DriverHealth(state=DriverState.DEGRADED, detail="1 of 2 sensors silent",
                                   devices={"gw-01.boiler": "ok", "gw-01.pump": "timeout"}),
            "osdp": DriverHealth(state=DriverState.OK),
        },
        counters={"outbox_incident_depth": outbox[0], "outbox_bulk_depth": outbox[1],
                  "outbox_oldest_age_s": 42, "readings": 1000})


async def test_gateway_rows_carry_state_health_config_and_arrive_live(
    running_server: ServerApp, edge: EdgePublisher,
) -> None:
    edge.publish(Status(gateway="gw-01", seq=edge.next_seq(), ts=utc_now(),
                        state=GatewayState.ONLINE, agent_version="1.4.2"), retain=True)
    other = EdgePublisher(edge.port, "gw-02")
    try:
        other.publish(Status(gateway="gw-02", seq=other.next_seq(), ts=utc_now(),
                             state=GatewayState.ONLINE, agent_version="1.3.0"))
    finally:
        other.close()
    edge.publish(_health(edge, cpu=3.5, outbox=(2, 40)))
    assert running_server.http_url is not None
    async with httpx.AsyncClient(base_url=running_server.http_url, trust_env=False,
                                 timeout=30) as http:
        api = Api(http)

        async def rows() -> dict[str, dict[str, Any]] | None:
            listed = {g["id"]: g for g in await api.json("control", "/api/v1/gateways")}
            ready = len(listed) == 2 and listed["gw-01"]["health_at"] is not None
            return listed if ready else None

        gateways = await async_wait_until(rows, what="both gateways, gw-01 with health")
        gw01 = gateways["gw-01"]
        assert (gw01["state"], gw01["agent_version"]) == ("online", "1.4.2")
        assert gw01["state_changed_at"] is not None and gw01["last_seen_at"] is not None
        assert (gw01["cpu_percent"], gw01["memory_rss_bytes"], gw01["disk_free_bytes"],
                gw01["uptime_s"]) == (3.5, 31_000_000, 8 * 10**9, 120.0)
        assert (gw01["outbox_depth"], gw01["outbox_oldest_age_s"]) == (42, 42)
        assert [(d["name"], d["state"], d["detail"]) for d in gw01["drivers"]] == [
            ("modbus", "degraded", "1 of 2 sensors silent"), ("osdp", "ok", None)]
        assert gw01["drivers"][0]["devices"] == [{"id": "gw-01.boiler", "state": "ok"},
                                                 {"id": "gw-01.pump", "state": "timeout"}]
        assert gw01["config"] is None  # no credentials in the community: nothing pushed
        gw02 = gateways["gw-02"]
        assert (gw02["agent_version"], gw02["health_at"], gw02["cpu_percent"],
                gw02["drivers"]) == ("1.3.0", None, None, [])

        # A credential set for the community: the version each gateway confirmed against it.
        created = await api.as_("control", "POST", "/api/v1/communities/ly/credentials",
                                json={"id": "r-1", "holder": "张伟", "card": "100200",
                                      "doors": ["b1-main"]})
        assert created.status_code == 201, created.text
        edge.publish(CommandResult(gateway="gw-01", seq=edge.next_seq(), ts=utc_now(),
                                   command_id=new_event_id(), ok=True,
                                   result={"credentials_version": 1}))

        async def configs() -> dict[str, Any] | None:
            listed = {g["id"]: g["config"] for g in await api.json("control", "/api/v1/gateways")}
            return listed if listed["gw-01"] and listed["gw-01"]["confirmed"] == 1 else None

        confirmed = await async_wait_until(configs, what="gw-01 confirms version 1")
        assert confirmed["gw-01"]["wanted"] == 1 and confirmed["gw-01"]["current"] is True
        assert confirmed["gw-01"]["confirmed_at"] is not None
        assert (confirmed["gw-02"]["confirmed"], confirmed["gw-02"]["wanted"],
                confirmed["gw-02"]["current"]) == (0, 1, False)

        # Live: a health message reaches a worker who sees one of the gateway's grids, once;
        # a status change too. A worker of another grid gets neither.
        url = running_server.http_url.replace("http://", "ws://") + "/api/v1/stream?token="
        await api.json("worker-g01", "/api/v1/gateways")
        await api.json("worker-g02", "/api/v1/gateways")
        async with connect(url + api.tokens["worker-g01"], proxy=None) as mine, \
                connect(url + api.tokens["worker-g02"], proxy=None) as theirs:
            await async_wait_until(lambda: running_server.hub.subscribers == 2,
                                   what="two streams subscribed")
            edge.publish(_health(edge, cpu=7.25, outbox=(0, 5)))
            event = await _next_gateway_event(mine)
            assert (event["event"], event["gateway"]["id"], event["gateway"]["cpu_percent"],
                    event["gateway"]["outbox_depth"]) == ("health", "gw-01", 7.25, 5)
            assert event["gateway"]["drivers"][0]["name"] == "modbus"
            assert "points" not in event["gateway"] and "health" not in event["gateway"]
            edge.publish(Status(gateway="gw-01", seq=edge.next_seq(), ts=utc_now(),
                                state=GatewayState.OFFLINE))
            status = await _next_gateway_event(mine)
            assert (status["event"], status["gateway"]["state"],
                    status["gateway"]["agent_version"]) == ("status", "offline", "1.4.2")
            other = EdgePublisher(edge.port, "gw-02")
            try:  # gw-02's grid is worker-g02's: the first gateway event they get
                other.publish(Status(gateway="gw-02", seq=100, ts=utc_now(),
                                     state=GatewayState.OFFLINE))
            finally:
                other.close()
            seen = await _next_gateway_event(theirs)
            assert seen["gateway"]["id"] == "gw-02"


async def _next_gateway_event(ws: Any) -> dict[str, Any]:
    """The next ``gateway`` event (incident events about the offline gateway pass by)."""
    while True:
        event = json.loads(await asyncio.wait_for(ws.recv(), 30))
        if event.get("type") == "gateway":
            return event


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


async def test_sparklines_of_many_points_from_real_readings_scoped_by_grid(
    running_server: ServerApp, edge: EdgePublisher, influx: tuple[InfluxDB, str],
) -> None:
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(hours=24)
    # Readings every 5 minutes for 24 h on the boiler (temperature and humidity), one on the
    # pump two days ago (before the window: a latest value, no sparkline), gw-02's boiler.
    readings = [("gw-01.boiler", "temperature", 40.0 + (i % 12), start + timedelta(minutes=5 * i))
                for i in range(24 * 12)]
    readings += [("gw-01.boiler", "humidity", 55.0, start + timedelta(hours=1))]
    for first in range(0, len(readings), 100):
        edge.publish(edge.telemetry(readings[first:first + 100]))
    edge.publish(edge.telemetry([("gw-01.pump", "temperature", 12.5,
                                  end - timedelta(days=2))]))
    other = EdgePublisher(edge.port, "gw-02")
    try:
        other.publish(other.telemetry([("gw-02.boiler", "temperature", 61.0,
                                        end - timedelta(minutes=30))]))
    finally:
        other.close()
    await async_wait_until(lambda: running_server.counters.get("influx.written_lines")
                           >= len(readings) + 2, 30, "readings written to InfluxDB")
    assert running_server.http_url is not None
    async with httpx.AsyncClient(base_url=running_server.http_url, trust_env=False,
                                 timeout=30) as http:
        api = Api(http)
        window = {"from": _iso(start), "to": _iso(end)}
        body = await api.json("control", "/api/v1/points/sparklines", gateway="gw-01", **window)
        assert body["step_s"] == 900 and body["points"] == ["gw-01.boiler", "gw-01.pump"]
        assert (body["unknown"], body["truncated"]) == ([], False)
        series = {(s["point"], s["field"]): s for s in body["series"]}
        assert set(series) == {("gw-01.boiler", "temperature"), ("gw-01.boiler", "humidity"),
                               ("gw-01.pump", "temperature")}
        boiler = series[("gw-01.boiler", "temperature")]
        assert len(boiler["values"]) == 96  # 24 h in 15-minute buckets of three readings
        first_ms, first_mean = boiler["values"][0]
        assert first_ms == int(start.timestamp() * 1000) and first_mean == 41.0  # 40, 41, 42
        assert boiler["latest"] == 40.0 + (24 * 12 - 1) % 12
        assert datetime.fromisoformat(boiler["latest_at"]) == end - timedelta(minutes=5)
        pump = series[("gw-01.pump", "temperature")]
        assert (pump["latest"], pump["values"]) == (12.5, [])  # silent in the window
        humidity = series[("gw-01.boiler", "humidity")]
        assert humidity["values"] == [[int((start + timedelta(hours=1)).timestamp() * 1000),
                                       55.0]]

        only = await api.json("control", "/api/v1/points/sparklines", field="humidity",
                              point=["gw-01.boiler", "gw-02.boiler"], **window)
        assert [(s["point"], s["field"]) for s in only["series"]] == [
            ("gw-01.boiler", "humidity")]

        # A worker of g02: another grid's point and a point that does not exist look alike.
        theirs = await api.json("worker-g02", "/api/v1/points/sparklines",
                                point=["gw-01.boiler", "gw-02.boiler", "gw-99.nothing"],
                                **window)
        assert theirs["points"] == ["gw-02.boiler"]
        assert theirs["unknown"] == ["gw-01.boiler", "gw-99.nothing"]
        assert [(s["point"], s["latest"]) for s in theirs["series"]] == [("gw-02.boiler", 61.0)]
        none = await api.json("worker-g02", "/api/v1/points/sparklines", gateway="gw-01")
        assert (none["points"], none["series"]) == ([], [])

        too_many = await api.as_("control", "GET", "/api/v1/points/sparklines",
                                 params={"point": [f"p{i}" for i in range(201)]})
        assert too_many.status_code == 422 and "200" in too_many.json()["detail"]
        neither = await api.as_("control", "GET", "/api/v1/points/sparklines")
        assert neither.status_code == 422
        injected = await api.as_("control", "GET", "/api/v1/points/sparklines",
                                 params={"gateway": "gw-01", "field": 'x" ; DROP'})
        assert injected.status_code == 422
        assert (await http.get("/api/v1/points/sparklines",
                               params={"gateway": "gw-01"})).status_code == 401
