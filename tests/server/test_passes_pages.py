"""The residents' and visitors' phone pages in real Chromium, on SQLite and PostgreSQL: sign
in with a one-time code, the pass's QR (decoded from the screenshot and verified with the
deployment's public key), inviting a visitor, the visitor's link page; a phone and a desktop
viewport, screenshots kept in test-artifacts/screenshots."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest
from api_client import PASSWORDS, Api
from conftest import ServerFactory
from server_helpers import EdgePublisher, async_wait_until

from gridsense_protocol import AccessEvent, AccessResult, passes, utc_now
from gridsense_server.access_control import credentials as creds
from gridsense_server.passes import keys

CHROMIUM = "/usr/bin/chromium"
SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
SIZES = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1366, "height": 768}}
CSV = """id,holder,card,pin,valid_from,valid_until,doors,buildings
r-301,张伟,00100200,,,,,b1
"""

pytestmark = pytest.mark.skipif(shutil.which(CHROMIUM) is None,
                                reason="Debian's chromium is not installed (scripts/test)")


async def _read_qr(page: Any) -> str:
    """What a scanner held over the page's QR reads (OpenCV's detector, on a screenshot)."""
    picture = cv2.imdecode(np.frombuffer(await page.locator("svg.pass-qr").screenshot(),
                                         np.uint8), cv2.IMREAD_COLOR)
    return str(cv2.QRCodeDetector().detectAndDecode(picture)[0])


async def test_resident_and_visitor_pages_on_a_phone_and_a_desktop(
    db_url: str, start_server: ServerFactory,
) -> None:
    from playwright.async_api import async_playwright

    server = await start_server()
    with server.factory.begin() as session:
        creds.upsert(session, "ly", creds.parse_csv(CSV))
    with server.factory() as session:
        public = keys.public_keys(session)
    SHOTS.mkdir(parents=True, exist_ok=True)
    async with httpx.AsyncClient(base_url=server.http_url, trust_env=False, timeout=30) as http, \
            async_playwright() as p:
        api = Api(http)
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            for size, viewport in SIZES.items():
                issued = await api.as_("control", "POST",
                                       "/api/v1/credentials/r-301/resident-code")
                assert issued.status_code == 201, issued.text
                context = await browser.new_context(
                    viewport=viewport, locale="zh-CN", timezone_id="Asia/Shanghai",
                    device_scale_factor=2)
                page = await context.new_page()
                errors: list[str] = []
                page.on("console", lambda m, errors=errors: errors.append(m.text)
                        if m.type == "error" and "401" not in m.text else None)
                await page.goto(f"{server.http_url}/#/r")
                await page.locator("#pass-code").wait_for()
                assert await page.locator("h1").inner_text() == "电子出入证"
                await page.screenshot(path=str(SHOTS / f"pass-signin-{size}.png"))
                await page.fill("#pass-code", issued.json()["code"].lower())
                await page.get_by_role("button", name="登录").click()
                await page.locator("svg.pass-qr").wait_for()
                assert await page.locator(".pass-name").inner_text() == "张伟"
                assert "b1" in await page.locator(".pass-building").inner_text()
                await page.screenshot(path=str(SHOTS / f"pass-resident-{size}.png"))
                text = await async_wait_until(lambda page=page: _read_qr(page), 15,
                                              "the resident's QR read")
                shown = passes.verify(text, public_keys=public, site_keys={})
                assert (shown.holder, shown.kind) == ("r-301", "resident")
                assert shown.not_after - shown.not_before <= 60
                assert not await page.evaluate(
                    "document.documentElement.scrollWidth > window.innerWidth")

                await page.get_by_role("link", name="邀请访客").click()
                await page.fill("#v-name", f"王五{size}")
                await page.fill("#v-phone", "13800000000")
                await page.get_by_role("button", name="生成访客通行证").click()
                link = await page.locator("#visitor-link").inner_text()
                await page.locator(".pass-list li").first.wait_for()
                await page.screenshot(path=str(SHOTS / f"pass-invite-{size}.png"),
                                      full_page=True)
                assert errors == [], errors

                visitor = await browser.new_context(viewport=viewport, locale="zh-CN",
                                                    timezone_id="Asia/Shanghai",
                                                    device_scale_factor=2)
                guest = await visitor.new_page()
                # The link names the configured public address; here the test's server.
                assert "/#/v/" in link
                await guest.goto(f"{server.http_url}/#{link.split('#', 1)[1]}")
                await guest.locator("svg.pass-qr").wait_for()
                assert await guest.locator("h1").inner_text() == "访客通行证"
                assert await guest.locator(".pass-state").inner_text() == "有效"
                await guest.screenshot(path=str(SHOTS / f"pass-visitor-{size}.png"),
                                       full_page=True)
                text = await async_wait_until(lambda guest=guest: _read_qr(guest), 15,
                                              "the visitor's QR read")
                read = passes.verify(text, public_keys=public, site_keys={})
                assert (read.kind, read.holder, read.uses, read.buildings) == (
                    "visitor", "r-301", 1, ("b1",))
                await visitor.close()

                # Without signal the pass still shows (the day of tokens kept on the phone).
                await page.goto(f"{server.http_url}/#/r")
                await page.locator("svg.pass-qr").wait_for()
                await context.set_offline(True)
                await page.evaluate("window.dispatchEvent(new HashChangeEvent('hashchange'))")
                cached = await page.evaluate("JSON.parse(localStorage.getItem('gridsense.pass'))"
                                             ".pass.tokens.length")
                assert cached >= 1439
                await context.close()
        finally:
            await browser.close()


async def test_the_control_rooms_passes_page_names_visitor_and_inviter(
    start_server: ServerFactory, edge: EdgePublisher,
) -> None:
    from playwright.async_api import async_playwright

    server = await start_server()
    with server.factory.begin() as session:
        creds.upsert(session, "ly", creds.parse_csv(CSV))
    async with httpx.AsyncClient(base_url=server.http_url, trust_env=False, timeout=30) as http, \
            async_playwright() as p:
        api = Api(http)
        start = utc_now()
        made = await api.as_("control", "POST", "/api/v1/communities/ly/visitor-passes", json={
            "inviter": "r-301", "name": "王五", "phone": "13800000000", "uses": 1,
            "not_before": start.isoformat(),
            "not_after": (start + timedelta(hours=2)).isoformat()})
        assert made.status_code == 201, made.text
        pass_id = made.json()["pass_id"]
        edge.publish(AccessEvent(gateway=edge.gateway, seq=edge.next_seq(), ts=utc_now(),
                                 point="gw-01.boiler", door="b1-main",
                                 result=AccessResult.GRANTED, method="pass", pass_id=pass_id,
                                 credential="r-301", offline=True))

        async def logged() -> bool:
            events = await api.json("control", "/api/v1/access-events")
            return any(e["pass_id"] == pass_id for e in events)

        await async_wait_until(logged, 30, "the pass use logged")
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            for size, viewport in SIZES.items():
                context = await browser.new_context(viewport=viewport, locale="zh-CN",
                                                    timezone_id="Asia/Shanghai")
                page = await context.new_page()
                await page.goto(f"{server.http_url}/")
                await page.get_by_label("用户名").fill("control")
                await page.get_by_label("密码").fill(PASSWORDS["control"])
                await page.get_by_role("button", name="登录", exact=True).click()
                await page.locator("#board").wait_for()
                await page.goto(f"{server.http_url}/#/passes")
                row = page.locator(".access-table tbody tr").first
                await row.wait_for()
                assert "访客 王五" in await row.inner_text()
                assert "张伟（r-301）" in await row.inner_text()
                assert "二维码" in await row.inner_text()
                await page.fill("#code-credential", "r-301")
                await page.get_by_role("button", name="生成登录码").click()
                code = await page.locator("#issued-code").inner_text()
                assert len(code) == 11 and code[5] == "-"
                await page.locator(".pass-admin-list li").first.wait_for()
                await page.screenshot(path=str(SHOTS / f"passes-control-{size}.png"),
                                      full_page=True)
                await context.close()
            revoked = await api.as_("control", "POST", f"/api/v1/passes/{pass_id}/revoke")
            assert revoked.json()["revoked"] is True
        finally:
            await browser.close()


async def test_a_phone_whose_clock_is_off_still_shows_the_gates_minute(
    start_server: ServerFactory,
) -> None:
    """A gate judges by its synchronised clock; a phone 15 minutes slow shows the token for the
    server's minute, not its own (the page corrects by the skew seen when it fetched)."""
    from playwright.async_api import async_playwright

    server = await start_server()
    with server.factory.begin() as session:
        creds.upsert(session, "ly", creds.parse_csv(CSV))
    with server.factory() as session:
        public = keys.public_keys(session)
    async with httpx.AsyncClient(base_url=server.http_url, trust_env=False, timeout=30) as http, \
            async_playwright() as p:
        code = (await Api(http).as_("control", "POST",
                                    "/api/v1/credentials/r-301/resident-code")).json()["code"]
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            context = await browser.new_context(viewport=SIZES["phone"], locale="zh-CN",
                                                device_scale_factor=2)
            await context.clock.install(time=utc_now() - timedelta(minutes=15))
            page = await context.new_page()
            await page.goto(f"{server.http_url}/#/r")
            await page.fill("#pass-code", code)
            await page.get_by_role("button", name="登录").click()
            await page.locator("svg.pass-qr").wait_for()
            text = await async_wait_until(lambda: _read_qr(page), 15, "the QR read")
            shown = passes.verify(text, public_keys=public, site_keys={})
            now = int(utc_now().timestamp())
            assert shown.not_before - 60 <= now < shown.not_after + 60, (shown, now)
        finally:
            await browser.close()
