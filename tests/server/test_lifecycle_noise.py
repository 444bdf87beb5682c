"""Noise control on a running server: one gateway_offline incident for a gateway that went
away (its points' offline incidents recorded but suppressed), silences with an expiry, and
self-clearing incidents closed by the system after a quiet period."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from lifecycle_support import Clock, database, open_incident
from server_helpers import EdgePublisher, async_wait_until
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from gridsense_protocol import AlarmState, Severity
from gridsense_server.app import ServerApp
from gridsense_server.config import LifecycleConfig
from gridsense_server.counters import Counters
from gridsense_server.db.models import Incident
from gridsense_server.escalation.scheduler import EscalationScheduler
from gridsense_server.notify.links import LinkSigner
from gridsense_server.workorders.noise import SilenceCache
from gridsense_server.workorders.transitions import history

PASSWORDS = {"worker-g01": "demo", "control": "ctl"}


async def _get(http: httpx.AsyncClient, token: str, path: str, **params: Any) -> Any:
    reply = await http.get(path, params=params, headers={"Authorization": f"Bearer {token}"})
    assert reply.status_code == 200, reply.text
    return reply.json()


async def test_gateway_offline_suppresses_point_offline_and_silences(
    running_server: ServerApp, mosquitto: Any
) -> None:
    assert running_server.http_url is not None
    gateway = EdgePublisher(mosquitto.port, "gw-01", will=True)
    gateway.publish(gateway.incident("gw-01.boiler"))  # online first (and one real incident)
    await async_wait_until(lambda: running_server.counters.get("incidents.opened") == 1)
    gateway.close(with_will=True)
    await async_wait_until(lambda: running_server.counters.get("gateways.offline") == 1)
    late = EdgePublisher(mosquitto.port, "gw-01-replay")  # another client, same gateway id
    late.gateway = "gw-01"
    late.seq = 100
    late.publish(late.incident("gw-01.pump", type="point_offline"))
    await async_wait_until(lambda: running_server.counters.get("incidents.opened") == 2)
    async with httpx.AsyncClient(base_url=running_server.http_url, trust_env=False,
                                 timeout=30) as http:
        tokens = {u: (await http.post("/api/v1/auth/token", json={
            "username": u, "password": p})).json()["access_token"] for u, p in PASSWORDS.items()}
        everything = await _get(http, tokens["control"], "/api/v1/incidents")
        by_type = {i["type"]: i for i in everything}
        assert set(by_type) == {"over_temperature", "gateway_offline", "point_offline"}
        assert by_type["gateway_offline"]["point"] == "gw-01"
        assert by_type["gateway_offline"]["suppressed"] is None
        assert by_type["point_offline"]["suppressed"] == "gateway_offline"
        detail = await _get(http, tokens["control"],
                            f"/api/v1/incidents/{by_type['point_offline']['id']}")
        assert [h["action"] for h in detail["history"]] == ["open"]  # never escalated

        # A worker may not silence; control silences the pump's rapid_rise for 10 minutes.
        refused = await http.post("/api/v1/silences", json={"point": "gw-01.pump",
                                                             "minutes": 10},
                                  headers={"Authorization": f"Bearer {tokens['worker-g01']}"})
        assert refused.status_code == 403 and "may not silence" in refused.json()["detail"]
        made = await http.post("/api/v1/silences",
                               json={"point": "gw-01.pump", "type": "rapid_rise",
                                     "minutes": 10, "note": "maintenance"},
                               headers={"Authorization": f"Bearer {tokens['control']}"})
        assert made.status_code == 201, made.text
        # Ingest re-reads silences at most every SilenceCache.ttl: let the cached list expire.
        await asyncio.sleep(SilenceCache().ttl.total_seconds() + 0.5)
        late.publish(late.incident("gw-01.pump", type="rapid_rise"))
        await async_wait_until(lambda: running_server.counters.get("incidents.opened") == 3)
        silenced = await _get(http, tokens["control"], "/api/v1/incidents", type="rapid_rise")
        assert silenced[0]["suppressed"] == f"silence:{made.json()['id']}"
        assert len(await _get(http, tokens["control"], "/api/v1/silences")) == 1

        # Planned maintenance: gw-02 silenced, then stopped; its gateway_offline pages no one.
        quiet = await http.post("/api/v1/silences", json={"gateway": "gw-02", "minutes": 30,
                                                          "note": "firmware update"},
                                headers={"Authorization": f"Bearer {tokens['control']}"})
        assert quiet.status_code == 201, quiet.text
        second = EdgePublisher(mosquitto.port, "gw-02", will=True)
        second.publish(second.incident("gw-02.boiler"))
        await async_wait_until(lambda: running_server.counters.get("incidents.opened") == 4)
        second.close(with_will=True)
        await async_wait_until(lambda: running_server.counters.get("gateways.offline") == 2)
        offline = {i["point"]: i for i in await _get(http, tokens["control"], "/api/v1/incidents",
                                                     type="gateway_offline")}
        assert offline["gw-02"]["suppressed"] == f"silence:{quiet.json()['id']}"
        detail = await _get(http, tokens["control"], f"/api/v1/incidents/{offline['gw-02']['id']}")
        assert [h["action"] for h in detail["history"]] == ["open"]  # never escalated
    late.close()


@pytest.fixture
def factory(tmp_path: Any) -> Iterator[sessionmaker[Session]]:
    yield from database(f"sqlite:///{tmp_path / 'server.db'}")


def test_self_clearing_minor_incident_auto_resolves_but_critical_waits(
    factory: sessionmaker[Session],
) -> None:
    config = LifecycleConfig.model_validate({"auto_resolve": {"types": ["door_ajar"],
                                                              "quiet_s": 600}})
    clock = Clock()
    minor = open_incident(factory, config, severity=Severity.MINOR, type="door_ajar",
                          clock=clock)
    critical = open_incident(factory, config, seq=2, point="gw-02.boiler",
                             severity=Severity.CRITICAL, type="door_ajar", clock=clock)
    with factory.begin() as session:
        session.execute(update(Incident).values(alarm=AlarmState.CLEARED.value))
    scheduler = EscalationScheduler(factory, config, LinkSigner(b"x" * 20, "http://t", 60),
                                    Counters(), clock=clock)
    clock.advance(300)
    scheduler.run_due()
    clock.now += timedelta(seconds=400)
    scheduler.run_due()
    with factory() as session:
        assert session.get(Incident, minor).state == "closed"  # type: ignore[union-attr]
        assert session.get(Incident, critical).state == "new"  # type: ignore[union-attr]
        assert history(session, minor)[-1].action == "auto_resolve"
