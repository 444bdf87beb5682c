"""Read receipts on the running server: opening the incident signed in marks the addressee's
page read, per channel, once; a bare GET of the signed link (a chat app's link preview) and a
reader nobody paged mark nothing. The incident's pages list each page sent with whether its
addressee has read it."""

from __future__ import annotations

import re

import httpx
from server_helpers import EdgePublisher, async_wait_until
from sqlalchemy import select

from gridsense_server.app import ServerApp
from gridsense_server.db.models import Notification


async def test_opening_the_incident_signed_in_is_what_counts_as_read(
    running_server: ServerApp, edge: EdgePublisher
) -> None:
    edge.publish(edge.incident("gw-01.boiler"))

    def page() -> Notification | None:
        with running_server.factory() as session:
            return session.scalars(select(Notification).where(
                Notification.recipient == "worker-g01")).first()

    await async_wait_until(lambda: page() is not None, 30, "worker-g01 paged")
    row = page()
    assert row is not None
    found = re.search(r"https?://\S+(/link/\S+)", row.body)
    assert found is not None
    assert running_server.http_url is not None
    async with httpx.AsyncClient(base_url=running_server.http_url, trust_env=False,
                                 timeout=30) as http:
        async def auth(user: str, password: str) -> dict[str, str]:
            reply = await http.post("/api/v1/auth/token",
                                    json={"username": user, "password": password})
            return {"Authorization": f"Bearer {reply.json()['access_token']}"}

        control, worker = await auth("control", "ctl"), await auth("worker-g01", "demo")
        reads = f"/api/v1/incidents/{row.incident_id}/reads"

        preview = await http.get(found.group(1))  # what a chat app's link preview does
        assert preview.status_code == 303
        assert (await http.get(f"/api/v1/incidents/{row.incident_id}",
                               headers=control)).status_code == 200  # control was not paged
        assert (await http.get(reads, headers=control)).json() == []
        pages = f"/api/v1/incidents/{row.incident_id}/pages"
        unread = (await http.get(pages, headers=control)).json()
        mine = [p for p in unread if p["recipient"] == "worker-g01"]
        assert mine and all(p["read_at"] is None and p["name"] for p in mine), unread

        for _ in range(2):
            opened = await http.get(f"/api/v1/incidents/{row.incident_id}?via=wecom",
                                    headers=worker)
            assert opened.status_code == 200
        await http.get(f"/api/v1/incidents/{row.incident_id}", headers=worker)
        answer = (await http.get(reads, headers=control)).json()
        assert [(r["username"], r["channel"]) for r in answer] == [
            ("worker-g01", "wecom"), ("worker-g01", "app")]
        read = [p for p in (await http.get(pages, headers=worker)).json()
                if p["recipient"] == "worker-g01"]
        assert read and all(p["read_at"] == answer[0]["read_at"] for p in read), read
        elsewhere = await auth("worker-g02", "demo2")
        assert (await http.get(pages, headers=elsewhere)).status_code == 404  # not their grid
        bad = await http.get(f"/api/v1/incidents/{row.incident_id}?via=WeCom%20!",
                             headers=worker)
        assert bad.status_code == 422
