"""The grid worker's phone, server side, on a running server: the inbox of pages (one read
model with the channels' read receipts), check-in by a point's QR label or its typed code
(wrong and foreign labels refused, counted, throttled), return and defer with a reason, and
actions named by a client id applied once however often an offline queue resends them."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from api_client import Api
from conftest import ServerFactory
from server_helpers import EdgePublisher, async_wait_until
from sqlalchemy import select

from gridsense_protocol.qr import compose
from gridsense_server.app import ServerApp
from gridsense_server.db.models import Notification


async def _paged(server: ServerApp, point: str, user: str = "worker-g01") -> str:
    def found() -> str | None:
        with server.factory() as session:
            return session.scalar(select(Notification.incident_id).join_from(
                Notification, Notification.incident).where(
                Notification.recipient == user).where(
                Notification.incident.has(point_id=point)))
    await async_wait_until(lambda: found() is not None, 30, f"{user} paged about {point}")
    incident = found()
    assert incident is not None
    return incident


@pytest.fixture
async def on_both(start_server: ServerFactory, db_url: str) -> ServerApp:
    """The server on SQLite and on PostgreSQL (the inbox's grouped query, the action ids)."""
    return await start_server(db_url=db_url)


@pytest.fixture
async def api(running_server: ServerApp) -> AsyncIterator[Api]:
    async with _client(running_server) as http:
        yield Api(http)


def _client(server: ServerApp) -> httpx.AsyncClient:
    assert server.http_url is not None
    return httpx.AsyncClient(base_url=server.http_url, trust_env=False, timeout=30)


async def test_a_page_waits_in_the_inbox_until_read_on_any_channel(
        on_both: ServerApp, edge: EdgePublisher) -> None:
    async with _client(on_both) as http:
        await _inbox(on_both, edge, Api(http))


async def _inbox(running_server: ServerApp, edge: EdgePublisher, api: Api) -> None:
    edge.publish(edge.incident("gw-01.boiler"))
    boiler = await _paged(running_server, "gw-01.boiler")
    edge.publish(edge.incident("gw-01.pump"))
    pump = await _paged(running_server, "gw-01.pump")

    assert (await api.json("worker-g01", "/api/v1/inbox/unread")) == {"unread": 2}
    items = await api.json("worker-g01", "/api/v1/inbox")
    assert [i["incident_id"] for i in items] == [pump, boiler]  # the newest page first
    assert all(i["unread"] and i["read_at"] is None for i in items)
    assert items[0]["incident"]["point_name"] == "水泵房"
    assert items[0]["title"] and "app" in items[0]["channels"]
    assert await api.json("worker-g02", "/api/v1/inbox") == []  # nobody paged worker-g02

    # Read in WeCom (the signed link, signed in): a receipt, and read here too.
    await api.json("worker-g01", f"/api/v1/incidents/{boiler}", via="wecom")
    read = await api.as_("worker-g01", "POST", f"/api/v1/inbox/{pump}/read")
    assert read.json() == {"incident_id": pump, "newly_read": True, "unread": 0}
    again = await api.as_("worker-g01", "POST", f"/api/v1/inbox/{pump}/read")
    assert again.json()["newly_read"] is False
    reads = await api.json("control", f"/api/v1/incidents/{pump}/reads")
    assert [(r["username"], r["channel"]) for r in reads] == [("worker-g01", "app")]
    items = await api.json("worker-g01", "/api/v1/inbox")
    assert [i["unread"] for i in items] == [False, False]
    assert await api.json("worker-g01", "/api/v1/inbox", unread=True) == []
    foreign = await api.as_("worker-g02", "POST", f"/api/v1/inbox/{pump}/read")
    assert foreign.status_code == 404

    mine = await api.json("worker-g01", "/api/v1/incidents", order="mine")
    assert {i["id"] for i in mine} == {pump, boiler}


async def test_check_in_by_label_qr_and_code_and_refusals(
        start_server: ServerFactory, edge: EdgePublisher) -> None:
    # Six free failures, then a wait long enough that the test never outlives it.
    running_server = await start_server(auth_yaml="throttle: {free_failures: 6, "
                                                  "base_delay_s: 600}")
    async with _client(running_server) as http:
        await _check_in(running_server, edge, Api(http))


async def _check_in(running_server: ServerApp, edge: EdgePublisher, api: Api) -> None:
    edge.publish(edge.incident("gw-01.boiler"))
    iid = await _paged(running_server, "gw-01.boiler")
    label = await api.json("control", "/api/v1/points/gw-01.boiler/label")
    assert label["qr"].startswith("GS1:L:gw-01.boiler:1:")
    assert label["point_name"] == "1号楼锅炉房"
    other = await api.json("control", "/api/v1/points/gw-01.pump/label")
    assert (await api.as_("worker-g01", "GET", "/api/v1/points/gw-01.boiler/label")
            ).status_code == 403  # a worker never sees a label's secret from the server
    checkin = f"/api/v1/incidents/{iid}/checkin"

    async def refused(body: dict[str, str], key_text: str) -> None:
        reply = await api.as_("worker-g01", "POST", checkin, json=body)
        assert reply.status_code == 400, reply.text
        assert key_text in reply.json()["detail"], reply.json()

    await refused({"qr": other["qr"]}, "这是其他点位的标签")
    await refused({"qr": compose("P", "some-pass")}, "这不是点位签到标签")
    await refused({"qr": "https://example.com/"}, "not a gridsense code")
    await refused({"qr": label["qr"][:-3] + "AAA"}, "标签校验失败")
    assert running_server.counters.get("api.checkin_refused.checkin_wrong_point") == 1
    both = await api.as_("worker-g01", "POST", checkin,
                         json={"qr": label["qr"], "code": label["code"]})
    assert both.status_code == 422

    by_code = await api.as_("worker-g01", "POST", checkin, json={"code": label["code"]})
    assert by_code.status_code == 200, by_code.text
    assert by_code.json()["transition"]["action"] == "checkin_code"
    by_qr = await api.as_("worker-g01", "POST", checkin, json={"qr": label["qr"]})
    assert by_qr.json()["transition"]["action"] == "checkin_qr"
    assert by_qr.json()["incident"]["state"] == "new"  # a check-in moves no state
    elsewhere = await api.as_("worker-g02", "POST", checkin, json={"qr": label["qr"]})
    assert elsewhere.status_code == 404

    rotated = await api.as_("control", "POST", "/api/v1/points/gw-01.boiler/label/rotate")
    assert rotated.json()["version"] == 2 and rotated.json()["code"] != label["code"]
    await refused({"qr": label["qr"]}, "此标签已换发")
    detail = await api.json("worker-g01", f"/api/v1/incidents/{iid}")
    checkins = [(h["action"], h["actor"]) for h in detail["history"]
                if h["action"].startswith("checkin")]
    assert checkins == [("checkin_code", "worker-g01"), ("checkin_qr", "worker-g01")]
    assert all(h["at"] for h in detail["history"])

    # Guessing codes: one failure so far; the seventh imposes a wait, then all are refused.
    guesses = [await api.as_("worker-g01", "POST", checkin, json={"code": f"0000 000{n}"})
               for n in range(6)]
    assert [g.status_code for g in guesses] == [400] * 6
    assert ["retry-after" in g.headers for g in guesses] == [False] * 5 + [True]
    blocked = await api.as_("worker-g01", "POST", checkin, json={"code": label["code"]})
    assert blocked.status_code == 429 and "尝试次数过多" in blocked.json()["detail"]
    assert running_server.counters.get("api.checkin_throttled") == 1


async def test_label_sheet_is_a_print_page_of_qr_codes(running_server: ServerApp,
                                                       api: Api) -> None:
    sheet = await api.as_("control", "GET", "/labels/sheet", params={"grid": "g01"})
    assert sheet.status_code == 200 and sheet.headers["content-type"].startswith("text/html")
    page = sheet.text
    assert "1号楼锅炉房" in page and "水泵房" in page and "2号楼锅炉房" not in page
    assert page.count('<svg xmlns="http://www.w3.org/2000/svg"') == 2
    assert "<script" not in page and " style=" not in page  # the server's CSP holds
    label = await api.json("control", "/api/v1/points/gw-01.pump/label")
    assert label["code"] in page
    css = await api.as_("control", "GET", "/labels/sheet.css")
    assert css.headers["content-type"].startswith("text/css")
    assert (await api.as_("worker-g01", "GET", "/labels/sheet")).status_code == 403


async def test_return_and_defer_need_a_reason_and_actions_apply_once(
        on_both: ServerApp, edge: EdgePublisher) -> None:
    async with _client(on_both) as http:
        await _return_defer_once(on_both, edge, Api(http))


async def _return_defer_once(running_server: ServerApp, edge: EdgePublisher, api: Api) -> None:
    edge.publish(edge.incident("gw-01.boiler"))
    iid = await _paged(running_server, "gw-01.boiler")

    first = await api.act("worker-g01", iid, "accept", action_id="phone-0001-accept")
    assert first.status_code == 200, first.text
    resent = await api.act("worker-g01", iid, "accept", action_id="phone-0001-accept")
    assert resent.status_code == 200 and resent.json() == first.json()
    assert running_server.counters.get("api.actions_replayed") == 1
    reused = await api.act("worker-g01", iid, "resolve", action_id="phone-0001-accept")
    assert reused.status_code == 409 and "another action" in reused.json()["detail"]

    no_reason = await api.act("worker-g01", iid, "return")
    assert no_reason.status_code == 400 and "须填写原因" in no_reason.json()["detail"]
    returned = await api.act("worker-g01", iid, "return", reason="不在我的片区，请改派",
                             action_id="phone-0002-return")
    assert returned.json()["incident"]["state"] == "returned"
    await api.act("worker-g01", iid, "accept", action_id="phone-0003-accept")
    assert (await api.act("control", iid, "defer")).status_code == 400
    deferred = await api.act("control", iid, "defer", reason="等待配件", note="明早到货")
    assert deferred.json()["transition"]["note"] == "等待配件\n明早到货"

    detail = await api.json("worker-g01", f"/api/v1/incidents/{iid}")
    steps = [h["action"] for h in detail["history"] if h["action"] not in ("escalate",)]
    assert steps == ["open", "accept", "return", "accept", "defer"]
    [returned_entry] = [h for h in detail["history"] if h["action"] == "return"]
    assert returned_entry["note"] == "不在我的片区，请改派"
