"""Electronic passes over HTTP on a running server (real broker, database, InfluxDB): the
control room issues a resident's one-time code; the resident signs in on the phone, gets a day
of one-minute QR tokens that verify with the deployment's public key, invites a visitor to
their own building; the visitor's link shows a QR that verifies; pass uses reported by two
gateways appear in the access log with visitor and inviter, and over-use becomes one incident;
revocation, CSRF, sign-in guessing and the session kinds' separation."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from api_client import Api
from server_helpers import EdgePublisher, async_wait_until
from test_notify_webhook import Receiver

from gridsense_protocol import AccessEvent, AccessResult, passes, utc_now
from gridsense_server.access_control import credentials as creds
from gridsense_server.app import ServerApp
from gridsense_server.passes import keys, residents

CSV = """id,holder,card,pin,valid_from,valid_until,doors,buildings
r-201,张伟,00100200,,,,,b1
"""


def _cookie(reply: httpx.Response) -> str:
    """The resident cookie's value (Secure: a client over plain HTTP would not send it back by
    itself, as a browser on localhost does)."""
    for header in reply.headers.get_list("set-cookie"):
        name, _, rest = header.partition("=")
        if name == residents.COOKIE:
            assert "HttpOnly" in header and "SameSite=strict" in header, header
            return rest.split(";")[0]
    raise AssertionError(f"no {residents.COOKIE} cookie in {reply.headers}")


@pytest.fixture
def inbox() -> Iterator[Receiver]:
    """A resident's channel: a JSON webhook that records what it got."""
    found = Receiver()
    yield found
    found.close()


def _pass_event(edge: EdgePublisher, pass_id: str, result: AccessResult) -> AccessEvent:
    return AccessEvent(gateway=edge.gateway, seq=edge.next_seq(), ts=utc_now(),
                       point=f"{edge.gateway}.boiler", door="b1-main", result=result,
                       method="pass", pass_id=pass_id, credential="r-201", offline=True,
                       reason=None if result is AccessResult.GRANTED else "used_up")


async def test_resident_and_visitor_passes_end_to_end(
    running_server: ServerApp, edge: EdgePublisher, inbox: Receiver,
) -> None:
    with running_server.factory.begin() as session:
        creds.upsert(session, "ly", creds.parse_csv(CSV))
    assert running_server.http_url is not None
    async with httpx.AsyncClient(base_url=running_server.http_url, trust_env=False,
                                 timeout=60) as http:
        api = Api(http)
        worker = await api.as_("worker-g01", "POST", "/api/v1/credentials/r-201/resident-code")
        assert worker.status_code == 403, worker.text
        issued = await api.as_("control", "POST", "/api/v1/credentials/r-201/resident-code",
                               json={"send_to": inbox.url})
        assert issued.status_code == 201, issued.text
        code = issued.json()["code"]
        assert issued.json()["sign_in_url"].endswith("/#/r") and issued.json()["sent"] == "sent"
        # The resident got it through their own channel (a JSON webhook here).
        assert len(inbox.received) == 1 and code in json.dumps(inbox.received[0],
                                                                  ensure_ascii=False)

        signed_in = await http.post("/api/v1/resident/sign-in", json={"code": code})
        assert signed_in.status_code == 200, signed_in.text
        me = signed_in.json()
        assert (me["name"], me["buildings"]) == ("张伟", ["b1"])
        phone = {"Cookie": f"{residents.COOKIE}={_cookie(signed_in)}"}
        again = await http.post("/api/v1/resident/sign-in", json={"code": code})
        assert again.status_code == 401 and again.json()["detail"].startswith("登录码无效")

        # A resident session is no staff session, and the other way round.
        assert (await http.get("/api/v1/incidents", headers=phone)).status_code == 401
        staff = {"Authorization": f"Bearer {api.tokens['control']}"}
        assert (await http.get("/api/v1/resident/me", headers=staff)).status_code == 401

        own = (await http.get("/api/v1/resident/pass", headers=phone)).json()
        with running_server.factory() as session:
            public = keys.public_keys(session)
        assert own["form"] == "S" and len(own["tokens"]) >= 1439
        now = int(utc_now().timestamp())
        current = next(t for t in own["tokens"] if t["not_before"] <= now < t["not_after"])
        read = passes.verify(current["qr"], public_keys=public, site_keys={})
        assert (read.holder, read.kind, read.pass_id) == ("r-201", "resident", own["pass_id"])

        start = utc_now()
        invite = {"name": "王五", "phone": "13800000000", "not_before": start.isoformat(),
                  "not_after": (start + timedelta(hours=3)).isoformat(), "uses": 1}
        no_csrf = await http.post("/api/v1/resident/visitors", json=invite, headers=phone)
        assert no_csrf.status_code == 403
        writing = {**phone, "X-CSRF-Token": me["csrf_token"]}
        elsewhere = await http.post("/api/v1/resident/visitors",
                                    json={**invite, "buildings": ["b2"]}, headers=writing)
        assert elsewhere.status_code == 403 and "只能邀请访客进入您所在的楼栋" in elsewhere.text
        made = await http.post("/api/v1/resident/visitors", json=invite, headers=writing)
        assert made.status_code == 201, made.text
        visitor_pass = made.json()
        assert visitor_pass["buildings"] == ["b1"] and visitor_pass["uses"] == 1
        link = visitor_pass["link"]
        token = link.rsplit("/v/", 1)[1]
        assert len(token) >= 32

        page = (await http.get(f"/api/v1/visitor/{token}")).json()
        assert page["state"] == "valid" and page["visitor_name"] == "王五"
        shown = passes.verify(page["qr"], public_keys=public, site_keys={})
        assert (shown.pass_id, shown.kind, shown.holder, shown.uses, shown.buildings) == (
            visitor_pass["pass_id"], "visitor", "r-201", 1, ("b1",))
        assert (await http.get(f"/api/v1/visitor/{token[:-2]}xx")).status_code == 404

        # The single-use pass opened a door at two gateways cut off from each other.
        other = EdgePublisher(edge.port, "gw-02")
        try:
            edge.publish(_pass_event(edge, visitor_pass["pass_id"], AccessResult.GRANTED))
            other.publish(_pass_event(other, visitor_pass["pass_id"], AccessResult.GRANTED))
        finally:
            other.close()

        async def both_logged() -> list[dict[str, object]] | None:
            events = await api.json("control", "/api/v1/access-events")
            mine = [e for e in events if e["pass_id"] == visitor_pass["pass_id"]]
            return mine if len(mine) == 2 else None

        logged = await async_wait_until(both_logged, 30, "the two pass uses logged")
        assert {(e["visitor"], e["inviter"], e["inviter_name"], e["pass_kind"])
                for e in logged} == {("王五", "r-201", "张伟", "visitor")}
        assert await running_server.passes.reconcile_now() == 1
        assert await running_server.passes.reconcile_now() == 0
        incidents = await api.json("control", "/api/v1/incidents")
        overused = [i for i in incidents if i["type"] == "pass_overuse"]
        assert len(overused) == 1 and "王五" in overused[0]["message"]
        mine = (await http.get("/api/v1/resident/visitors", headers=phone)).json()
        assert [(v["pass_id"], v["used"]) for v in mine] == [(visitor_pass["pass_id"], 2)]

        revoked = await http.post(f"/api/v1/resident/visitors/{visitor_pass['pass_id']}/revoke",
                                  headers=writing)
        assert revoked.status_code == 200 and revoked.json()["revoked"]
        page = (await http.get(f"/api/v1/visitor/{token}")).json()
        assert page["state"] == "revoked" and page["qr"] is None

        # The community's gates read through OSDP readers: its passes turn compact.
        worker = await api.as_("worker-g01", "PUT", "/api/v1/communities/ly/pass-settings",
                               json={"compact": True})
        assert worker.status_code == 403
        setting = await api.as_("control", "PUT", "/api/v1/communities/ly/pass-settings",
                                json={"compact": True})
        assert setting.status_code == 200, setting.text
        compact = (await http.get("/api/v1/resident/pass", headers=phone)).json()
        with running_server.factory() as session:
            site_id, site_key = keys.site_key(session, "ly")
        assert compact["form"] == "M"
        token = compact["tokens"][1]["qr"]
        assert len(token) == passes.COMPACT_TEXT_LENGTH <= 64
        read = passes.verify(token, public_keys={}, site_keys={site_id: site_key})
        assert read.pass_id == own["pass_id"]

        # Guessing codes: refused, then throttled per address (Retry-After).
        statuses = [(await http.post("/api/v1/resident/sign-in",
                                     json={"code": f"ZZZZZ-ZZZZ{i}"})).status_code
                    for i in range(6)]
        assert statuses[0] == 401 and statuses[-1] == 429, statuses

