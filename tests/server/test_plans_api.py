"""Site plans on a running server: the control room uploads a plan image (its type read from the
bytes), places points and gateways on it; everyone reads what their grids allow; each marker's
state follows its incidents and its gateway."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import cv2
import httpx
import numpy as np
from api_client import Api
from server_helpers import EdgePublisher, async_wait_until
from sqlalchemy import select, update

from gridsense_devtools.site_plan import site_plan_svg
from gridsense_protocol import AlarmState, GatewayState, Status, utc_now
from gridsense_server.app import ServerApp
from gridsense_server.db.models import Incident
from gridsense_server.db.web_models import AuditEntry

PLAN = "/api/v1/plans/ly"
IMAGE = f"{PLAN}/image"


def png(width: int, height: int) -> bytes:
    ok, data = cv2.imencode(".png", np.full((height, width, 3), 200, np.uint8))
    assert ok
    return data.tobytes()


def jpeg(width: int, height: int) -> bytes:
    ok, data = cv2.imencode(".jpg", np.full((height, width, 3), 90, np.uint8))
    assert ok
    return data.tobytes()


async def upload(api: Api, user: str, body: bytes, content_type: str = "image/png",
                 ) -> httpx.Response:
    return await api.as_(user, "PUT", IMAGE, content=body,
                         headers={"Content-Type": content_type})


def audit_actions(app: ServerApp) -> list[tuple[str, str]]:
    with app.factory() as session:
        return [(row.action, row.target) for row in session.scalars(
            select(AuditEntry).where(AuditEntry.action.like("plan.%")).order_by(AuditEntry.id))]


async def test_upload_serve_replace_and_place_as_control_only(
    start_server: Any, db_url: str,
) -> None:
    app: ServerApp = await start_server(db_url=db_url)
    assert app.http_url is not None
    async with httpx.AsyncClient(base_url=app.http_url, trust_env=False, timeout=30) as http:
        api = Api(http)
        index = await api.json("control", "/api/v1/plans")
        assert index["can_edit"] is True and index["tile_url"] is None
        assert [(c["community"], c["name"], c["plan"]) for c in index["communities"]] == [
            ("ly", "莲园社区", None)]
        # Placing before there is a picture to place on.
        early = await api.as_("control", "PUT", f"{PLAN}/markers/point/gw-01.boiler",
                              json={"x": 0.5, "y": 0.5})
        assert early.status_code == 409, early.text

        image = png(320, 200)
        reply = await upload(api, "control", image)
        assert reply.status_code == 200, reply.text
        meta = reply.json()
        assert (meta["content_type"], meta["width"], meta["height"], meta["size"]) == (
            "image/png", 320, 200, len(image))
        served = await api.as_("worker-g01", "GET", IMAGE)
        assert served.status_code == 200 and served.content == image
        assert served.headers["content-type"] == "image/png"
        assert served.headers["x-content-type-options"] == "nosniff"
        assert "sandbox" in served.headers["content-security-policy"]
        assert "default-src 'none'" in served.headers["content-security-policy"]
        again = await api.as_("worker-g01", "GET", IMAGE,
                              headers={"If-None-Match": served.headers["etag"]})
        assert again.status_code == 304

        # A worker may look, not change.
        refused = await upload(api, "worker-g01", png(10, 10))
        assert refused.status_code == 403, refused.text
        moved = await api.as_("worker-g01", "PUT", f"{PLAN}/markers/point/gw-01.boiler",
                              json={"x": 0.1, "y": 0.1})
        assert moved.status_code == 403

        placed = await api.as_("control", "PUT", f"{PLAN}/markers/point/gw-01.boiler",
                               json={"x": 0.25, "y": 0.75})
        assert placed.status_code == 200, placed.text
        assert placed.json()["name"] == "1号楼锅炉房" and placed.json()["grid_name"] == "第一网格"
        moved = await api.as_("control", "PUT", f"{PLAN}/markers/point/gw-01.boiler",
                              json={"x": 0.3, "y": 0.7})
        assert moved.status_code == 200
        for where, expected in (({"x": 1.2, "y": 0.5}, 422), ({"x": -0.1, "y": 0}, 422)):
            bad = await api.as_("control", "PUT", f"{PLAN}/markers/point/gw-01.pump", json=where)
            assert bad.status_code == expected, bad.text
        unknown = await api.as_("control", "PUT", f"{PLAN}/markers/point/gw-09.nothing",
                                json={"x": 0.5, "y": 0.5})
        assert unknown.status_code == 404, unknown.text
        gateway = await api.as_("control", "PUT", f"{PLAN}/markers/gateway/gw-02",
                                json={"x": 0.9, "y": 0.1})
        assert gateway.status_code == 200, gateway.text

        # A redrawn plan (now an SVG, then a JPEG) keeps the markers where they were.
        svg = await upload(api, "control", site_plan_svg().encode(), "image/svg+xml")
        assert svg.status_code == 200 and svg.json()["content_type"] == "image/svg+xml"
        assert (svg.json()["width"], svg.json()["height"]) == (1200, 800)
        photo = await upload(api, "control", jpeg(640, 480), "image/jpeg")
        assert (photo.json()["content_type"], photo.json()["width"]) == ("image/jpeg", 640)
        plan = await api.json("control", PLAN)
        assert {(m["kind"], m["id"], m["x"], m["y"]) for m in plan["markers"]} == {
            ("point", "gw-01.boiler", 0.3, 0.7), ("gateway", "gw-02", 0.9, 0.1)}
        assert {(t["kind"], t["id"]) for t in plan["unplaced"]} == {
            ("point", "gw-01.pump"), ("point", "gw-02.boiler"), ("gateway", "gw-01")}

        gone = await api.as_("control", "DELETE", f"{PLAN}/markers/gateway/gw-02")
        assert gone.status_code == 204
        assert audit_actions(app) == [
            ("plan.upload", "ly"), ("plan.place", "ly/point/gw-01.boiler"),
            ("plan.place", "ly/point/gw-01.boiler"), ("plan.place", "ly/gateway/gw-02"),
            ("plan.upload", "ly"), ("plan.upload", "ly"), ("plan.unplace", "ly/gateway/gw-02")]
        deleted = await api.as_("control", "DELETE", PLAN)
        assert deleted.status_code == 204
        assert (await api.as_("control", "GET", IMAGE)).status_code == 404
        assert (await api.json("control", PLAN))["markers"] == []


REFUSED = {
    "an HTML page named plan.png": b"<!DOCTYPE html><html><body><script>alert(1)</script>",
    "HTML without a doctype": b"<html><body><svg xmlns='http://www.w3.org/2000/svg'/></body>",
    "an SVG with a script": b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
                            b"<script>alert(1)</script></svg>",
    "an SVG with an event handler": b'<svg xmlns="http://www.w3.org/2000/svg" width="10" '
                                    b'height="10" onload="alert(1)"/>',
    "an SVG loading another site's picture": b'<svg xmlns="http://www.w3.org/2000/svg" '
        b'xmlns:xlink="http://www.w3.org/1999/xlink" width="10" height="10">'
        b'<image xlink:href="https://example.com/x.png"/></svg>',
    "an SVG with HTML inside": b'<svg xmlns="http://www.w3.org/2000/svg" width="10" '
        b'height="10"><foreignObject><div xmlns="http://www.w3.org/1999/xhtml">x</div>'
        b"</foreignObject></svg>",
    "XML entities": b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "aaaa">]>'
                    b'<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1">&a;</svg>',
    "an SVG without a size": b'<svg xmlns="http://www.w3.org/2000/svg"/>',
    "a truncated PNG": png(50, 50)[:-20],
    "a JPEG header and nothing else": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00",
    "a PDF": b"%PDF-1.4\n1 0 obj\n",
    "a PNG too large a side": png(3000, 10),
}


async def test_the_type_is_read_from_the_bytes_and_bad_images_are_refused(
    start_server: Any, db_url: str,
) -> None:
    app: ServerApp = await start_server(db_url=db_url,
                                        extra_yaml="plans:\n  max_side_px: 2000\n")
    assert app.http_url is not None
    async with httpx.AsyncClient(base_url=app.http_url, trust_env=False, timeout=30) as http:
        api = Api(http)
        for what, body in REFUSED.items():
            reply = await upload(api, "control", body, "image/png")
            assert reply.status_code == 415, (what, reply.status_code, reply.text)
            assert " / " in reply.json()["detail"], what  # Chinese first, then English
        # The type the client claims does not matter: a PNG sent as SVG is a PNG.
        claimed = await upload(api, "control", png(40, 30), "image/svg+xml")
        assert claimed.status_code == 200 and claimed.json()["content_type"] == "image/png"
        assert [a for a, _ in audit_actions(app)] == ["plan.upload"]


async def test_an_image_over_the_size_limit_is_refused_before_it_is_stored(
    start_server: Any, db_url: str,
) -> None:
    app: ServerApp = await start_server(db_url=db_url, extra_yaml="plans:\n  max_bytes: 4096\n")
    assert app.http_url is not None
    big = png(600, 600) + b"\x00" * 5000  # well-formed start, too many bytes
    async with httpx.AsyncClient(base_url=app.http_url, trust_env=False, timeout=30) as http:
        api = Api(http)
        reply = await upload(api, "control", big)
        assert reply.status_code == 413, reply.text
        chunked = await api.as_("control", "PUT", IMAGE, content=_chunks(big),
                                headers={"Content-Type": "image/png"})
        assert chunked.status_code == 413
        assert (await api.as_("control", "GET", IMAGE)).status_code == 404
        small = await upload(api, "control", png(20, 20))
        assert small.status_code == 200, small.text


async def _chunks(data: bytes) -> Any:
    for start in range(0, len(data), 1000):
        yield data[start:start + 1000]


async def test_markers_are_scoped_by_grid_and_coloured_by_incidents_and_gateways(
    start_server: Any, edge: EdgePublisher, db_url: str,
) -> None:
    app: ServerApp = await start_server(db_url=db_url)
    assert app.http_url is not None
    other = EdgePublisher(edge.port, "gw-02")
    async with httpx.AsyncClient(base_url=app.http_url, trust_env=False, timeout=30) as http:
        api = Api(http)
        assert (await upload(api, "control", site_plan_svg().encode())).status_code == 200
        for kind, target, x in (("point", "gw-01.boiler", 0.1), ("point", "gw-01.pump", 0.2),
                                ("point", "gw-02.boiler", 0.6), ("gateway", "gw-01", 0.15),
                                ("gateway", "gw-02", 0.65)):
            reply = await api.as_("control", "PUT", f"{PLAN}/markers/{kind}/{target}",
                                  json={"x": x, "y": 0.5})
            assert reply.status_code == 200, reply.text

        async def states(user: str) -> dict[str, dict[str, Any]]:
            body = await api.json(user, f"{PLAN}/state")
            return {f"{m['kind']}:{m['id']}": m for m in body["markers"]}

        before = await states("control")
        assert {k: m["status"] for k, m in before.items()} == {
            "point:gw-01.boiler": "normal", "point:gw-01.pump": "normal",
            "point:gw-02.boiler": "normal", "gateway:gw-01": "normal", "gateway:gw-02": "normal"}
        # A worker of the second grid sees its own point and gateway only.
        assert set(await states("worker-g02")) == {"point:gw-02.boiler", "gateway:gw-02"}
        assert {m["id"] for m in (await api.json("worker-g02", PLAN))["markers"]} == {
            "gw-02.boiler", "gw-02"}
        missing = await api.as_("worker-g02", "GET", "/api/v1/plans/nowhere/state")
        assert missing.status_code == 404

        edge.publish(edge.incident("gw-01.boiler"))
        await async_wait_until(lambda: app.counters.get("incidents.opened") == 1)
        now = await states("control")
        boiler = now["point:gw-01.boiler"]
        assert (boiler["status"], boiler["severity"], boiler["alarm_active"], boiler["open"],
                boiler["gateway"]) == ("alarm", "major", True, 1, "gw-01")
        [incident_id] = boiler["incidents"]
        assert now["point:gw-01.pump"]["status"] == "normal"
        # The second grid's worker does not learn of the first grid's incident.
        assert "point:gw-01.boiler" not in await states("worker-g02")

        # Past its accept deadline: overdue. Alarm cleared: still open until closed.
        with app.factory.begin() as session:
            session.execute(update(Incident).where(Incident.id == incident_id)
                            .values(accept_due_at=utc_now() - timedelta(minutes=1)))
        assert (await states("control"))["point:gw-01.boiler"]["status"] == "overdue"
        with app.factory.begin() as session:
            session.execute(update(Incident).where(Incident.id == incident_id)
                            .values(accept_due_at=utc_now() + timedelta(hours=1)))
        edge.publish(edge.incident("gw-01.boiler", state=AlarmState.CLEARED))
        await async_wait_until(lambda: _alarm(app, incident_id) == "cleared")
        assert (await states("control"))["point:gw-01.boiler"]["status"] == "open"

        # The second gateway goes offline: its marker shows the gateway_offline incident, its
        # point (no incident of its own) is offline.
        other.publish(Status(gateway="gw-02", seq=other.next_seq(), ts=utc_now(),
                             state=GatewayState.OFFLINE), retain=True)
        # Waits for the commit (the gateway's counter moves inside its transaction).
        await async_wait_until(lambda: _alarm(app, type_="gateway_offline") == "active")
        after = await states("control")
        assert (after["gateway:gw-02"]["status"], after["gateway:gw-02"]["gateway_online"]) == (
            "alarm", False)
        assert after["point:gw-02.boiler"]["status"] == "offline"
        plan = await api.json("control", PLAN)
        assert {f"{m['kind']}:{m['id']}": m["status"] for m in plan["states"]} == {
            k: m["status"] for k, m in after.items()}
    other.publish_raw("gridsense/v1/gw-02/status", b"", retain=True)  # the retained one goes
    other.close()


def _alarm(app: ServerApp, incident_id: str | None = None, type_: str | None = None,
           ) -> str | None:
    """The alarm of an incident, by id or by type."""
    where = Incident.id == incident_id if incident_id else Incident.type == type_
    with app.factory() as session:
        return session.scalar(select(Incident.alarm).where(where))


async def test_an_offline_tile_server_is_offered_to_the_page_and_allowed_by_its_policy(
    start_server: Any,
) -> None:
    tiles = "https://tiles.estate.lan/{z}/{x}/{y}.png"
    app: ServerApp = await start_server(extra_yaml=f"plans:\n  tile_url: '{tiles}'\n")
    assert app.http_url is not None
    async with httpx.AsyncClient(base_url=app.http_url, trust_env=False, timeout=30) as http:
        api = Api(http)
        assert (await api.json("worker-g01", "/api/v1/plans"))["tile_url"] == tiles
        page = await http.get("/")
        assert "img-src 'self' https://tiles.estate.lan blob:" in (
            page.headers["content-security-policy"])
