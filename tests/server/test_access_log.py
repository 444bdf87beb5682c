"""The access log over a real broker and server: durable per event id, in InfluxDB, queryable
per door, credential and time range, scoped by grid; the credentials API's roles and errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from server_helpers import EdgePublisher, async_wait_until

from gridsense_devtools.services import InfluxDB
from gridsense_protocol import AccessEvent, AccessResult
from gridsense_server.app import ServerApp

T0 = datetime(2026, 11, 25, 8, 0, 0, tzinfo=UTC)
PASSWORDS = {"worker-g01": "demo", "worker-g02": "demo2", "control": "ctl"}


async def _token(http: httpx.AsyncClient, username: str) -> str:
    reply = await http.post("/api/v1/auth/token",
                            json={"username": username, "password": PASSWORDS[username]})
    return str(reply.json()["access_token"])


def _event(edge: EdgePublisher, point: str, door: str, result: AccessResult, minute: int,
           credential: str | None = None) -> AccessEvent:
    return AccessEvent(gateway=edge.gateway, seq=edge.next_seq(),
                       ts=T0 + timedelta(minutes=minute),
                       point=point, door=door, result=result, method="card",
                       credential=credential, card="0123456789abcdef" if credential else None,
                       reason=None if result is AccessResult.GRANTED else "unknown")


async def test_access_events_are_stored_once_queryable_and_scoped(
    running_server: ServerApp, edge: EdgePublisher, influx: tuple[InfluxDB, str]
) -> None:
    other = EdgePublisher(edge.port, "gw-02")
    try:
        first = _event(edge, "gw-01.boiler", "b1-main", AccessResult.GRANTED, 0, "alice")
        edge.publish(first)
        edge.publish(first)  # a redelivery
        edge.publish(_event(edge, "gw-01.boiler", "b1-main", AccessResult.DENIED, 5))
        edge.publish(_event(edge, "gw-01.boiler", "b1-back", AccessResult.GRANTED, 10, "alice"))
        other.publish(_event(other, "gw-02.boiler", "b2-main", AccessResult.GRANTED, 15, "bob"))
        assert running_server.http_url is not None
        async with httpx.AsyncClient(base_url=running_server.http_url, trust_env=False,
                                     timeout=30) as http:
            control = {"Authorization": f"Bearer {await _token(http, 'control')}"}

            async def four_stored() -> bool:
                reply = await http.get("/api/v1/access-events", headers=control)
                return len(reply.json()) >= 4

            await async_wait_until(four_stored, 30, "four access events")
            events = (await http.get("/api/v1/access-events", headers=control)).json()
            assert [e["door"] for e in events] == ["b2-main", "b1-back", "b1-main", "b1-main"]
            by_door = (await http.get("/api/v1/access-events", headers=control,
                                      params={"door": "b1-main"})).json()
            assert [e["result"] for e in by_door] == ["denied", "granted"]
            by_cred = (await http.get("/api/v1/access-events", headers=control,
                                      params={"credential": "alice"})).json()
            assert {e["door"] for e in by_cred} == {"b1-main", "b1-back"}
            window = (await http.get("/api/v1/access-events", headers=control, params={
                "since": (T0 + timedelta(minutes=4)).isoformat(),
                "until": (T0 + timedelta(minutes=12)).isoformat()})).json()
            assert [e["door"] for e in window] == ["b1-back", "b1-main"]
            g02 = {"Authorization": f"Bearer {await _token(http, 'worker-g02')}"}
            scoped = (await http.get("/api/v1/access-events", headers=g02)).json()
            assert [e["door"] for e in scoped] == ["b2-main"]
            csv_reply = await http.get("/api/v1/access-events", headers=control,
                                       params={"format": "csv", "door": "b2-main"})
            assert csv_reply.headers["content-type"].startswith("text/csv")
            assert csv_reply.text.splitlines()[0].startswith("event_id,ts,gateway,point")
            naive = await http.get("/api/v1/access-events", headers=control,
                                   params={"since": "2026-11-25T08:00:00"})
            assert naive.status_code == 422
        influx_server, db = influx
        rows = await async_wait_until(lambda: _rows(influx_server, db), 30, "access rows")
        assert len(rows) == 4
        assert {(r["door"], r["grid"]) for r in rows} >= {("b1-main", "g01-a"), ("b2-main", "g02")}
    finally:
        other.close()


async def _rows(influx_server: InfluxDB, db: str) -> list[dict] | None:
    rows = influx_server.points('SELECT "count", "door", "grid", "result" FROM "access"', db)
    return rows if len(rows) >= 4 else None


async def test_credentials_api_roles_and_import_errors(running_server: ServerApp) -> None:
    assert running_server.http_url is not None
    async with httpx.AsyncClient(base_url=running_server.http_url, trust_env=False,
                                 timeout=30) as http:
        control = {"Authorization": f"Bearer {await _token(http, 'control')}"}
        worker = {"Authorization": f"Bearer {await _token(http, 'worker-g01')}"}
        body = {"id": "r-1", "holder": "张伟", "card": "100200", "doors": ["b1-main"]}
        refused = await http.post("/api/v1/communities/ly/credentials", json=body,
                                  headers=worker)
        assert refused.status_code == 403
        created = await http.post("/api/v1/communities/ly/credentials", json=body,
                                  headers=control)
        assert created.status_code == 201, created.text
        assert created.json()["card_last4"] == "0200" and "100200" not in created.text
        missing = await http.post("/api/v1/communities/nowhere/credentials", json=body,
                                  headers=control)
        assert missing.status_code == 404
        bad_csv = "id,holder,card,doors\nr-2,李娜,1234,b1-main\nr-3,王芳,12ab,b1-main\n"
        imported = await http.post("/api/v1/communities/ly/credentials/import",
                                   content=bad_csv.encode(),
                                   headers={**control, "Content-Type": "text/csv"})
        assert imported.status_code == 422
        assert imported.json()["detail"]["problems"][0].startswith("line 3: card")
        assert "12ab" not in imported.text
        listed = (await http.get("/api/v1/communities/ly/credentials", headers=control)).json()
        assert [c["id"] for c in listed] == ["r-1"]  # the refused file changed nothing
        good = await http.post("/api/v1/communities/ly/credentials/import",
                               content=bad_csv.replace("12ab", "5678").encode(),
                               headers={**control, "Content-Type": "text/csv"})
        assert good.status_code == 200 and good.json()["imported"] == 2
        revoked = await http.delete("/api/v1/credentials/r-2", headers=control)
        assert revoked.status_code == 200 and revoked.json()["revoked"] is True
        assert (await http.delete("/api/v1/credentials/nope", headers=control)).status_code == 404
