"""Closing an incident whose alarm is still active, through a running server: a reason is
required (400 without), kept in the history and the audit log; a per-type setting refuses it
(409); once the device reports the alarm cleared, closing needs nothing more."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from api_client import Api
from server_helpers import EdgePublisher, async_wait_until

from gridsense_protocol import AlarmState
from gridsense_server.app import ServerApp
from gridsense_server.workorders.states import Refused, check_close_while_active
from gridsense_server.workorders.transitions import ALARM_ACTIVE_NOTE


def test_the_rule_by_target_alarm_and_type() -> None:
    refuse = ["over_temperature"]
    assert not check_close_while_active("over_temperature", "cleared", "closed", "", refuse)
    assert not check_close_while_active("rapid_rise", "active", "accepted", "", refuse)
    assert check_close_while_active("rapid_rise", "active", "closed", "checked", refuse)
    # A false alarm may be marked while a broken sensor stays active, with a reason.
    assert check_close_while_active("over_temperature", "active", "invalid", "sensor", refuse)
    for type_, reason, status in (("rapid_rise", " ", 400), ("over_temperature", "x", 409)):
        with pytest.raises(Refused) as refused:
            check_close_while_active(type_, "active", "closed", reason, refuse)
        assert refused.value.status == status
        assert refused.value.reason.startswith("告警仍在持续")  # Chinese first


async def _to_resolved(api: Api, incident: str) -> None:
    for action in ("accept", "resolve"):
        reply = await api.act("worker-g01", incident, action)
        assert reply.status_code == 200, reply.text


async def _verify(api: Api, incident: str, **body: Any) -> httpx.Response:
    return await api.act("control", incident, "verify", **body)


async def test_closing_an_active_alarm_needs_a_reason_and_a_listed_type_is_refused(
    start_server: Any, edge: EdgePublisher,
) -> None:
    app: ServerApp = await start_server(
        lifecycle={"refuse_close_while_active": ["over_temperature"]})
    edge.publish(edge.incident("gw-01.boiler"))  # over_temperature: refused while active
    edge.publish(edge.incident("gw-01.pump", type="rapid_rise"))
    await async_wait_until(lambda: app.counters.get("incidents.opened") == 2)
    assert app.http_url is not None
    async with httpx.AsyncClient(base_url=app.http_url, trust_env=False, timeout=30) as http:
        api = Api(http)
        listed = (await api.as_("control", "GET", "/api/v1/incidents")).json()
        ids = {item["type"]: item["id"] for item in listed}
        hot, rising = ids["over_temperature"], ids["rapid_rise"]
        for incident in (hot, rising):
            await _to_resolved(api, incident)

        bare = await _verify(api, rising, note="looks fine")
        assert bare.status_code == 400
        detail = bare.json()["detail"]
        assert detail.startswith("告警仍在持续") and "reason" in detail
        blank = await _verify(api, rising, reason="   ")
        assert blank.status_code == 400
        closed = await _verify(api, rising, reason="传感器已更换，现场温度正常", note="现场核查")
        assert closed.status_code == 200, closed.text
        entry = closed.json()["transition"]
        assert entry["to_state"] == "closed"
        assert entry["note"] == f"{ALARM_ACTIVE_NOTE}传感器已更换，现场温度正常\n现场核查"

        refused = await _verify(api, hot, reason="I am sure")
        assert refused.status_code == 409 and "over_temperature" in refused.json()["detail"]
        state = (await api.as_("control", "GET", f"/api/v1/incidents/{hot}")).json()["state"]
        assert state == "resolved"  # nothing changed

        edge.publish(edge.incident("gw-01.boiler", state=AlarmState.CLEARED, value=35.0))

        async def cleared() -> bool:
            reply = await api.as_("control", "GET", f"/api/v1/incidents/{hot}")
            return reply.json()["alarm"] == "cleared"

        await async_wait_until(cleared, 30, "the alarm cleared")
        after = await _verify(api, hot)
        assert after.status_code == 200 and after.json()["incident"]["state"] == "closed"

        audit = (await api.as_("control", "GET", "/api/v1/audit",
                               params={"action": "incident.verify"})).json()["entries"]
        details = {row["target"]: json.loads(row["detail"]) for row in audit}
        assert details[rising]["alarm"] == "active"
        assert details[rising]["reason"] == "传感器已更换，现场温度正常"
        assert details[hot]["alarm"] == "cleared" and "reason" not in details[hot]
    assert app.counters.get("api.actions_refused.400") == 2
    assert app.counters.get("api.actions_refused.409") == 1
