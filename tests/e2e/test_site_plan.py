"""The site plan in a real Chromium: the control room uploads 莲园社区's drawing, places a point and
drags it (the place is saved); a new incident turns its marker red on an open page without a
reload, and a click shows the incident; a grid worker on a phone, in English, sees only their
grid's marker. Screenshots are kept for a person to look at."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from playwright.sync_api import Browser, Page, expect

from gridsense_devtools.http import login
from gridsense_devtools.processes import Procs, wait_until
from gridsense_devtools.server_process import launch_server, write_registry_and_config
from gridsense_devtools.services import InfluxDB, Mosquitto
from gridsense_devtools.site_plan import site_plan_svg
from gridsense_protocol import AlarmState, Incident, Kind, Severity, encode, topic_for, utc_now

POINTS = {"gw-p1.boiler": ("gw-p1", "g01-a"), "gw-p2.substation": ("gw-p2", "g02-a")}
CHROMIUM = "/usr/bin/chromium"  # the same as conftest.py's (the skip needs it here)
SHOTS = Path("test-artifacts/screenshots")
DESKTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}

pytestmark = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None,
    reason="Debian's chromium is not installed (scripts/test installs it)",
)


@pytest.fixture
def base(tmp_path: Path, mosquitto: Mosquitto, influx: tuple[InfluxDB, str]) -> Iterator[str]:
    procs = Procs(tmp_path)
    try:
        config, url = write_registry_and_config(tmp_path, mosquitto.port, influx[0].url,
                                                influx[1], POINTS)
        launch_server(procs, config, url)
        yield url
    finally:
        procs.stop_all()


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / name), full_page=True)


def sign_in(page: Page, base: str, username: str) -> None:
    page.goto(base + "/")
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill("demo")
    page.get_by_role("button", name="登录", exact=True).click()
    expect(page.locator("#live")).to_be_visible()


def as_control(base: str) -> httpx.Client:
    return httpx.Client(base_url=base, trust_env=False, timeout=10,
                        headers={"Authorization": f"Bearer {login(base, 'control', 'demo')}"})


def publish_incident(mosquitto: Mosquitto, gateway: str, point: str) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=gateway)
    client.connect("127.0.0.1", mosquitto.port)
    client.loop_start()
    try:
        incident = Incident(gateway=gateway, seq=1, ts=utc_now(), point=point,
                            type="over_temperature", severity=Severity.CRITICAL,
                            state=AlarmState.ACTIVE, value=78.5, threshold=60, unit="°C",
                            message=f"{point} at 78.5 °C")
        client.publish(topic_for(gateway, Kind.INCIDENT), encode(incident),
                       qos=1).wait_for_publish(10)
    finally:
        client.loop_stop()
        client.disconnect()


def marker_of(page: Page, kind: str, target: str) -> Any:
    return page.locator(f'[id="marker-{kind}-{target}"]')


def test_control_uploads_places_and_drags_and_the_place_is_saved(
    browser: Browser, base: str, tmp_path: Path,
) -> None:
    page = browser.new_context(viewport=DESKTOP).new_page()
    sign_in(page, base, "control")
    page.goto(base + "/#/plan")
    expect(page.locator("#no-plan")).to_contain_text("还没有平面图")
    # An HTML page named like a picture is refused, and the page says why, in Chinese first.
    fake = tmp_path / "plan.png"
    fake.write_text("<!DOCTYPE html><html><body>not a plan</body></html>", encoding="utf-8")
    page.locator("#plan-upload").set_input_files(str(fake))
    expect(page.locator("#plan-error")).to_contain_text("文件类型不受支持")
    expect(page.locator("#plan-error")).to_contain_text("不是 SVG 图片")
    shot(page, "plan-control-refused.png")
    drawing = tmp_path / "莲园社区.svg"
    drawing.write_text(site_plan_svg(), encoding="utf-8")
    page.locator("#plan-upload").set_input_files(str(drawing))
    expect(page.locator("#plan-notice")).to_have_text("平面图已上传")
    expect(page.locator("#plan-title")).to_have_text("莲园社区平面图")
    expect(page.locator(".plan-image")).to_be_visible()

    page.get_by_role("button", name="调整点位").click()
    expect(page.locator("#unplaced-list li")).to_have_count(4)  # two points, two gateways
    page.get_by_role("button", name="放置 gw-p1.boiler").click()
    boiler = marker_of(page, "point", "gw-p1.boiler")
    expect(boiler).to_be_visible()
    expect(page.locator("#plan-notice")).to_have_text("已保存 gw-p1.boiler 的位置")

    # Drag it to a quarter of the way across and a third of the way down the drawing.
    stage = page.locator("#plan-stage").bounding_box()
    start = boiler.locator(".marker-dot").bounding_box()
    assert stage is not None and start is not None
    target = (stage["x"] + stage["width"] * 0.25, stage["y"] + stage["height"] * (1 / 3))
    page.mouse.move(start["x"] + start["width"] / 2, start["y"] + start["height"] / 2)
    page.mouse.down()
    page.mouse.move(target[0] - 40, target[1] - 20, steps=5)
    page.mouse.move(*target, steps=5)
    page.mouse.up()
    with as_control(base) as api:
        def saved() -> tuple[float, float]:
            [marker] = [m for m in api.get("/api/v1/plans/ly").json()["markers"]
                        if m["id"] == "gw-p1.boiler"]
            return marker["x"], marker["y"]
        # The server has the place the marker was dropped at (it was put at 0.5, 0.5).
        wait_until(lambda: saved() != (0.5, 0.5), 10, "the dragged place saved")
        x, y = saved()
        assert abs(x - 0.25) < 0.01 and abs(y - 1 / 3) < 0.01, (x, y)
        expect(page.locator("#plan-notice")).to_have_text("已保存 gw-p1.boiler 的位置")
        expect(page.locator("#marker-detail")).to_be_visible()
        shot(page, "plan-control-editing.png")

        # By keyboard: the arrow keys move it (Shift: five steps of 0.5 %), saved after a pause.
        boiler.focus()
        page.keyboard.press("Shift+ArrowRight")
        page.keyboard.press("Shift+ArrowRight")
        wait_until(lambda: abs(saved()[0] - (x + 0.05)) < 0.001, 10, "the keyed move saved")

    # A reload draws it where it was left.
    page.reload()
    page.goto(base + "/#/plan/ly")
    moved = marker_of(page, "point", "gw-p1.boiler").locator(".marker-dot").bounding_box()
    stage = page.locator("#plan-stage").bounding_box()
    assert moved is not None and stage is not None
    assert abs(moved["x"] + moved["width"] / 2 - (stage["x"] + stage["width"] * 0.30)) < 4


def test_a_new_incident_turns_its_marker_red_live_and_a_click_shows_it(
    browser: Browser, base: str, mosquitto: Mosquitto,
) -> None:
    with as_control(base) as api:
        assert api.put("/api/v1/plans/ly/image", content=site_plan_svg().encode()).is_success
        for kind, target, x, y in (("point", "gw-p1.boiler", 0.16, 0.2),
                                   ("point", "gw-p2.substation", 0.74, 0.2),
                                   ("gateway", "gw-p1", 0.3, 0.2), ("gateway", "gw-p2", 0.82, 0.2)):
            reply = api.put(f"/api/v1/plans/ly/markers/{kind}/{target}", json={"x": x, "y": y})
            assert reply.is_success, reply.text
    page = browser.new_context(viewport={"width": 1920, "height": 1080}).new_page()
    sign_in(page, base, "control")
    page.goto(base + "/#/plan")
    boiler = marker_of(page, "point", "gw-p1.boiler")
    expect(boiler).to_have_attribute("data-status", "normal")
    expect(marker_of(page, "gateway", "gw-p2")).to_be_visible()
    shot(page, "plan-control-wall-normal.png")

    publish_incident(mosquitto, "gw-p1", "gw-p1.boiler")
    expect(boiler).to_have_attribute("data-status", "alarm", timeout=20_000)
    expect(boiler).to_have_attribute("aria-label", "点位 gw-p1.boiler：告警中 · 1 件未结")
    colour = boiler.locator(".marker-dot").evaluate("e => getComputedStyle(e).backgroundColor")
    assert colour == "rgb(180, 35, 24)"  # the page's critical red
    expect(marker_of(page, "point", "gw-p2.substation")).to_have_attribute("data-status",
                                                                            "normal")
    boiler.click()
    detail = page.locator("#marker-detail")
    expect(detail).to_contain_text("告警中")
    expect(detail).to_contain_text("紧急")
    link = detail.get_by_role("link", name="温度过高")
    expect(link).to_be_visible()
    shot(page, "plan-control-wall-alarm.png")
    page.set_viewport_size(DESKTOP)
    shot(page, "plan-control-laptop-alarm.png")
    link.click()
    expect(page.locator("#board")).to_be_visible()

    # A grid worker of the other grid, on a phone, in English: their marker only.
    phone = browser.new_context(viewport=PHONE).new_page()
    sign_in(phone, base, "worker-g02")
    phone.get_by_role("button", name="English").click()
    phone.goto(base + "/#/plan")
    expect(phone.locator("#plan-title")).to_have_text("Site plan of 莲园社区")
    expect(marker_of(phone, "point", "gw-p2.substation")).to_have_attribute("data-status",
                                                                             "normal")
    expect(marker_of(phone, "point", "gw-p1.boiler")).to_have_count(0)
    expect(phone.locator("#plan-upload")).to_have_count(0)
    marker_of(phone, "point", "gw-p2.substation").click()
    expect(phone.locator("#marker-detail")).to_contain_text("No open incidents")
    shot(phone, "plan-worker-phone-en.png")
