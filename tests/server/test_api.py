"""The HTTP API on a real uvicorn: tokens, per-grid incidents, gateways, the live stream."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from server_helpers import EdgePublisher, async_wait_until
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from gridsense_devtools.services import Mosquitto
from gridsense_protocol import GatewayState, Health, Status, utc_now
from gridsense_server.api.tokens import TokenSigner
from gridsense_server.app import ServerApp

T0 = datetime(2024, 5, 1, 8, 0, 0, tzinfo=UTC)
PASSWORDS = {"worker-g01": "demo", "worker-g02": "demo2", "control": "ctl"}


def _client(app: ServerApp) -> httpx.AsyncClient:
    assert app.http_url is not None
    return httpx.AsyncClient(base_url=app.http_url, trust_env=False, timeout=30)


async def _token(http: httpx.AsyncClient, username: str) -> str:
    response = await http.post("/api/v1/auth/token",
                               json={"username": username, "password": PASSWORDS[username]})
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


async def _get(http: httpx.AsyncClient, path: str, token: str, **params: str) -> list[dict]:
    response = await http.get(path, params=params, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    return response.json()


def _stream(app: ServerApp, token: str) -> connect:
    assert app.http_url is not None
    url = app.http_url.replace("http://", "ws://") + f"/api/v1/stream?token={token}"
    return connect(url, proxy=None, open_timeout=30)


async def _next_event(ws: ClientConnection) -> dict:
    return json.loads(await asyncio.wait_for(ws.recv(), 30))


async def test_token_for_a_good_password_and_401_otherwise(running_server: ServerApp) -> None:
    async with _client(running_server) as http:
        good = await http.post("/api/v1/auth/token",
                               json={"username": "worker-g01", "password": "demo"})
        assert good.status_code == 200
        body = good.json()
        assert body["token_type"] == "bearer" and body["expires_in"] == 3600
        for username, password in [("worker-g01", "nope"), ("nobody", "demo")]:
            bad = await http.post("/api/v1/auth/token",
                                  json={"username": username, "password": password})
            assert bad.status_code == 401
        assert (await http.get("/api/v1/incidents")).status_code == 401
        assert (await http.get("/api/v1/gateways")).status_code == 401
        forged = await http.get("/api/v1/incidents", headers={"Authorization": "Bearer x.y"})
        assert forged.status_code == 401
        ok = await http.get("/api/v1/incidents",
                            headers={"Authorization": f"Bearer {body['access_token']}"})
        assert ok.status_code == 200 and ok.json() == []


def test_tokens_are_signed_and_expire() -> None:
    signer = TokenSigner(b"0123456789abcdef0123", ttl_s=60)
    token = signer.issue("worker-g01", now=1000)
    assert signer.verify(token, now=1030) == "worker-g01"
    assert signer.verify(token, now=1061) is None
    other = TokenSigner(b"another-secret-of-20b", ttl_s=60)
    assert other.verify(token, now=1030) is None
    payload, _, signature = token.partition(".")
    assert signer.verify(payload[:-2] + "xx." + signature, now=1030) is None


async def test_staff_see_only_their_grids_incidents(
    start_server, edge: EdgePublisher, db_url: str
) -> None:
    running_server = await start_server(db_url=db_url)
    edge.publish(edge.incident("gw-01.boiler", ts=T0))  # g01-a, a micro-grid of g01
    other = EdgePublisher(edge.port, "gw-02")
    try:
        other.publish(other.incident("gw-02.boiler", ts=T0 + timedelta(seconds=1)))
    finally:
        other.close()
    edge.publish(edge.incident("gw-01.ghost", ts=T0 + timedelta(seconds=2)))  # unregistered
    await async_wait_until(lambda: running_server.counters.get("incidents.opened") == 3)
    async with _client(running_server) as http:
        g01 = await _get(http, "/api/v1/incidents", await _token(http, "worker-g01"))
        g02 = await _get(http, "/api/v1/incidents", await _token(http, "worker-g02"))
        control_token = await _token(http, "control")
        everything = await _get(http, "/api/v1/incidents", control_token)
        assert [i["point"] for i in g01] == ["gw-01.boiler"]
        assert [i["point"] for i in g02] == ["gw-02.boiler"]
        assert [i["point"] for i in everything] == ["gw-01.ghost", "gw-02.boiler",
                                                    "gw-01.boiler"]
        item = g01[0]
        assert set(item) == {"id", "point", "grid", "gateway", "type", "severity", "state",
                             "alarm", "opened_at", "last_seen_at", "count", "value", "threshold",
                             "unit", "message", "backfilled", "level", "accept_due_at",
                             "resolve_due_at", "overdue",
                             "accepted_by", "previous_id", "suppressed", "point_name", "location",
                             "grid_name", "micro_grid_name", "community_name", "street_name",
                             "drill"}
        assert (item["grid"], item["state"], item["alarm"], item["count"]) == (
            "g01-a", "new", "active", 1)
        assert item["opened_at"] == "2024-05-01T08:00:00Z"

        by_grid = await _get(http, "/api/v1/incidents", control_token, grid="g01")
        assert [i["point"] for i in by_grid] == ["gw-01.boiler"]
        assert await _get(http, "/api/v1/incidents", control_token, state="closed") == []
        assert len(await _get(http, "/api/v1/incidents", control_token, state="open")) == 3
        assert len(await _get(http, "/api/v1/incidents", control_token,
                              type="over_temperature")) == 3
        detail = await _get(http, f"/api/v1/incidents/{item['id']}", control_token)
        assert len(detail["event_ids"]) == 1
        g02_token = await _token(http, "worker-g02")
        hidden = await http.get(f"/api/v1/incidents/{item['id']}",
                                headers={"Authorization": f"Bearer {g02_token}"})
        assert hidden.status_code == 404


async def test_the_stream_delivers_only_to_the_owning_grid(
    running_server: ServerApp, edge: EdgePublisher
) -> None:
    async with _client(running_server) as http:
        tokens = {user: await _token(http, user) for user in PASSWORDS}
    async with (
        _stream(running_server, tokens["worker-g01"]) as ws_g01,
        _stream(running_server, tokens["worker-g02"]) as ws_g02,
        _stream(running_server, tokens["control"]) as ws_control,
    ):
        await async_wait_until(lambda: running_server.hub.subscribers == 3)
        edge.publish(edge.incident("gw-01.boiler", ts=T0))
        event = await _next_event(ws_g01)
        assert event["type"] == "incident" and event["event"] == "opened"
        assert event["incident"]["point"] == "gw-01.boiler"
        assert event["incident"]["grid"] == "g01-a"
        assert (await _next_event(ws_control))["incident"]["point"] == "gw-01.boiler"

        # worker-g02's first event must be its own grid's, proving g01's never reached it.
        other = EdgePublisher(edge.port, "gw-02")
        try:
            other.publish(other.incident("gw-02.boiler", ts=T0))
        finally:
            other.close()
        assert (await _next_event(ws_g02))["incident"]["point"] == "gw-02.boiler"
        assert (await _next_event(ws_control))["incident"]["point"] == "gw-02.boiler"

        edge.publish(edge.incident("gw-01.boiler", ts=T0 + timedelta(seconds=5)))
        update = await _next_event(ws_g01)
        assert update["event"] == "updated" and update["incident"]["count"] == 2


@pytest.mark.parametrize("token", ["", "garbage", "x.y"])
async def test_the_stream_closes_with_4401_on_a_bad_token(
    running_server: ServerApp, token: str
) -> None:
    async with _stream(running_server, token) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 30)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401


async def test_gateways_online_from_retained_status_then_offline_from_last_will(
    start_server, mosquitto: Mosquitto, db_url: str
) -> None:
    # The birth is retained BEFORE the server exists: it arrives through the plain status
    # subscription (a shared subscription would never get a retained message).
    gateway = EdgePublisher(mosquitto.port, "gw-01", will=True)
    gateway.publish(Status(gateway="gw-01", seq=gateway.next_seq(), ts=utc_now(),
                           state=GatewayState.ONLINE, agent_version="0.1.0"), retain=True)
    gateway.publish(Health(gateway="gw-01", seq=gateway.next_seq(), ts=utc_now(),
                           uptime_s=12.0, cpu_percent=3.5, memory_rss_bytes=30_000_000,
                           disk_free_bytes=10**9))  # QoS 1 but nobody subscribed yet: gone
    app = await start_server(db_url=db_url)
    async with _client(app) as http:
        control = await _token(http, "control")
        worker_g02 = await _token(http, "worker-g02")

        async def gateway_state() -> str | None:
            rows = await _get(http, "/api/v1/gateways", control)
            return rows[0]["state"] if rows else None

        assert await async_wait_until(gateway_state, what="gw-01 online") == "online"
        gateway.publish(Health(gateway="gw-01", seq=gateway.next_seq(), ts=utc_now(),
                               uptime_s=20.0, cpu_percent=4.0, memory_rss_bytes=31_000_000,
                               disk_free_bytes=10**9))

        async def health() -> dict | None:
            return (await _get(http, "/api/v1/gateways", control))[0]["health"]

        assert (await async_wait_until(health, what="health stored"))["uptime_s"] == 20.0
        gateway.close(with_will=True)

        async def offline() -> bool:
            return await gateway_state() == "offline"

        await async_wait_until(offline, what="gw-01 offline from its last will")
        [row] = await _get(http, "/api/v1/gateways", control)
        assert row["id"] == "gw-01" and row["last_seen_at"] is not None
        # worker-g02 has no point on gw-01.
        assert await _get(http, "/api/v1/gateways", worker_g02) == []


async def test_healthz_and_openapi(running_server: ServerApp, edge: EdgePublisher) -> None:
    edge.publish_raw("gridsense/v1/gw-01/telemetry", b"nope")
    await async_wait_until(lambda: running_server.counters.get("ingest.invalid.malformed_json"))
    async with _client(running_server) as http:
        # In public only the status; the counters on the local-only port.
        assert (await http.get("/healthz")).json() == {"status": "degraded"}
        response = await http.get(f"{running_server.local_url}/healthz")
        health = response.json()
        # A dead letter: degraded, but 200 (a bad gateway must not get the server restarted).
        assert response.status_code == 200 and health["status"] == "degraded"
        assert health["mqtt.connected"] is True
        assert health["ingest.invalid.malformed_json"] == 1
        spec = (await http.get("/openapi.json")).json()
        assert {"/api/v1/auth/token", "/api/v1/incidents", "/api/v1/gateways",
                "/healthz", "/api/v1/dead-letters"} <= set(spec["paths"])
