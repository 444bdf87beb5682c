"""The printable commissioning report in a real Chromium (zh-CN), phone-sized and on a desktop:
its styles load under the server's CSP, the verdict reads red while a point is silent and
green once it reports. Screenshots go to test-artifacts/screenshots/."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import channels_support
import httpx
import pytest
from api_client import Api
from commissioning_support import server_yaml, with_installer
from conftest import ServerFactory
from server_helpers import EdgePublisher, async_wait_until

from gridsense_devtools.standins.server import VendorStandins

CHROMIUM = "/usr/bin/chromium"
SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
SIZES = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1366, "height": 768}}

pytestmark = pytest.mark.skipif(shutil.which(CHROMIUM) is None,
                                reason="Debian's chromium is not installed (scripts/test)")
standins = channels_support.standins


async def _shoot(url: str, token: str, name: str) -> list[dict[str, Any]]:
    """Open the report at each size; what each showed (verdict text, CSS applied, errors)."""
    from playwright.async_api import async_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    seen = []
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            for size, viewport in SIZES.items():
                context = await browser.new_context(
                    viewport=viewport, locale="zh-CN", timezone_id="Asia/Shanghai",
                    extra_http_headers={"Authorization": f"Bearer {token}"})
                page = await context.new_page()
                errors: list[str] = []
                page.on("console", lambda m, errors=errors: errors.append(m.text)
                        if m.type == "error" else None)
                await page.goto(url)
                verdict = page.locator("#verdict")
                seen.append({
                    "size": size, "verdict": await verdict.inner_text(),
                    "border": await verdict.evaluate(
                        "e => getComputedStyle(e).borderTopStyle"),
                    "wider_than_screen": await page.evaluate(
                        "document.documentElement.scrollWidth > window.innerWidth"),
                    "errors": errors})
                await page.screenshot(path=str(SHOTS / f"commissioning-{name}-{size}.png"),
                                      full_page=True)
                await context.close()
        finally:
            await browser.close()
    return seen


async def test_the_report_page_in_chromium_on_a_phone_and_a_desktop(
    start_server: ServerFactory, edge: EdgePublisher, registry_file: Path,
    standins: VendorStandins,
) -> None:
    standins.wecom.app("ww7c1d", "app-secret", 1000002)
    with_installer(registry_file)
    server = await start_server(extra_yaml=server_yaml(standins))
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    edge.publish(edge.telemetry([("gw-01.boiler", "temperature", 21.5, at)]))
    async with httpx.AsyncClient(base_url=server.http_url, trust_env=False, timeout=30) as http:
        api = Api(http)
        started = await api.as_("installer-ly", "POST", "/api/v1/gateways/gw-01/commissioning",
                                json={})
        run_id = started.json()["id"]

        async def verdict(wanted: str) -> bool:
            report = await api.json("installer-ly", f"/api/v1/commissioning/{run_id}")
            return report["verdict"] == wanted and report["points"][0]["ok"]

        await async_wait_until(lambda: verdict("red"), 60, "the red report")
        url = f"{server.http_url}/api/v1/commissioning/{run_id}/report.html"
        token = api.tokens["installer-ly"]
        for shown in await _shoot(url, token, "red"):
            assert shown["verdict"] == "结论 Verdict：不合格 fail", shown
            assert shown["border"] == "solid" and not shown["wider_than_screen"], shown
            assert shown["errors"] == [], shown

        edge.publish(edge.telemetry([("gw-01.pump", "temperature", 30.0, at)]))
        await async_wait_until(lambda: verdict("green"), 60, "the green report")
        for shown in await _shoot(url, token, "green"):
            assert shown["verdict"] == "结论 Verdict：合格 pass", shown
            assert shown["errors"] == [], shown
