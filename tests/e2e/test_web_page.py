"""The web page in a real Chromium: a grid worker signs in and sees their grid's incident arrive
live; another grid's incident never shows; a wrong password says so; the closed loop by the
detail's buttons; a camera incident's snapshot. The page is in Chinese (the default language)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import cv2
import httpx
import numpy as np
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from playwright.sync_api import Browser, Page, expect

from gridsense_devtools.http import login
from gridsense_devtools.processes import Procs, wait_until
from gridsense_devtools.server_process import launch_server, write_registry_and_config
from gridsense_devtools.services import InfluxDB, Mosquitto
from gridsense_protocol import (
    AlarmState,
    Incident,
    Kind,
    Severity,
    encode,
    tag_snapshot,
    topic_for,
    utc_now,
)

POINTS = {"gw-web.boiler": ("gw-web", "g01-a"), "gw-web.substation": ("gw-web", "g02-a")}
CHROMIUM = "/usr/bin/chromium"  # the same as conftest.py's (the skip needs it here)

pytestmark = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None,
    reason="Debian's chromium is not installed (scripts/test installs it)",
)


# A fast policy: the grid's workers at once, the grid leader 3 s later.
FAST_LIFECYCLE = """
lifecycle:
  tick_s: 0.2
  sla: {accept_s: 3, resolve_s: 600}
  policies:
    web-fast:
      steps:
        - {after_s: 0, notify: [workers]}
        - {after_s: 3, notify: [leader]}
"""
LEADER = "  - {username: leader-g01, name: 王芳, role: leader, grids: [g01], password: demo}\n"


def _serve(tmp_path: Path, mosquitto: Mosquitto, influx: tuple[InfluxDB, str],
           extra_staff: str = "", extra_config: str = "") -> Iterator[str]:
    """A server subprocess for the page; staff and config lines appended to the standard ones."""
    procs = Procs(tmp_path)
    try:
        config, base = write_registry_and_config(tmp_path, mosquitto.port, influx[0].url, influx[1],
                                           POINTS)
        registry = tmp_path / "registry.yaml"
        registry.write_text(registry.read_text() + extra_staff)
        config.write_text(config.read_text() + extra_config)
        launch_server(procs, config, base)
        yield base
    finally:
        procs.stop_all()


@pytest.fixture
def server_base(
    tmp_path: Path, mosquitto: Mosquitto, influx: tuple[InfluxDB, str]
) -> Iterator[str]:
    yield from _serve(tmp_path, mosquitto, influx)


@pytest.fixture
def lifecycle_base(
    tmp_path: Path, mosquitto: Mosquitto, influx: tuple[InfluxDB, str]
) -> Iterator[str]:
    yield from _serve(tmp_path, mosquitto, influx, LEADER, FAST_LIFECYCLE)


def publish_incident(mosquitto: Mosquitto, seq: int, point: str, kind: str,
                     state: AlarmState = AlarmState.ACTIVE) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="gw-web")
    client.connect("127.0.0.1", mosquitto.port)
    client.loop_start()
    try:
        incident = Incident(
            gateway="gw-web",
            seq=seq,
            ts=utc_now(),
            point=point,
            type=kind,
            severity=Severity.MAJOR,
            state=state,
            value=71.5,
            threshold=60,
            unit="°C",
        )
        client.publish(
            topic_for("gw-web", Kind.INCIDENT), encode(incident), qos=1
        ).wait_for_publish(10)
    finally:
        client.loop_stop()
        client.disconnect()


SHOTS = Path("test-artifacts/screenshots")


def shot(page: Page, name: str) -> None:
    """A screenshot kept for a person to look at (test-artifacts/ is not committed)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / name), full_page=True)


def sign_in(page: Page, base: str, username: str, password: str = "demo") -> None:
    page.goto(base + "/")
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(password)
    page.get_by_role("button", name="登录", exact=True).click()


def test_worker_sees_own_grids_incident_live(
    browser: Browser, server_base: str, mosquitto: Mosquitto
) -> None:
    page = browser.new_page()
    sign_in(page, server_base, "worker-g01")
    expect(page.locator("#board")).to_be_visible()
    expect(page.locator("#login")).to_be_hidden()
    expect(page.locator("#no-incidents")).to_be_visible()
    expect(page.locator("#live")).to_be_visible()  # the stream is open before anything happens

    # The other grid's incident first: once ours has arrived, theirs would have too.
    publish_incident(mosquitto, 1, "gw-web.substation", "over_temperature")
    publish_incident(mosquitto, 2, "gw-web.boiler", "over_temperature")
    rows = page.locator("#incidents tbody tr")
    expect(rows).to_have_count(1, timeout=20_000)
    expect(rows.first).to_contain_text("gw-web.boiler")
    expect(rows.first).to_contain_text("温度过高")
    expect(rows.first).to_contain_text("严重")
    shot(page, "web-worker-g01.png")

    # The control room sees both, straight from the API on load.
    control = browser.new_page()
    sign_in(control, server_base, "control")
    expect(control.locator("#incidents tbody tr")).to_have_count(2, timeout=20_000)


def test_phone_layout_and_wrong_password(
    browser: Browser, server_base: str
) -> None:
    phone = browser.new_page(viewport={"width": 390, "height": 844})
    sign_in(phone, server_base, "worker-g02", "not-the-password")
    expect(phone.locator("#login-error")).to_have_text("用户名或密码错误")
    sign_in(phone, server_base, "worker-g02")
    expect(phone.locator("#board")).to_be_visible()
    expect(phone.locator("#login")).to_be_hidden()
    shot(phone, "web-phone-board.png")


def test_escalation_then_the_closed_loop_by_buttons(
    browser: Browser, lifecycle_base: str, mosquitto: Mosquitto
) -> None:
    worker = browser.new_page()
    sign_in(worker, lifecycle_base, "worker-g01")
    expect(worker.locator("#live")).to_be_visible()
    publish_incident(mosquitto, 1, "gw-web.boiler", "over_temperature")
    row = worker.locator("#incidents tbody tr").first
    expect(row).to_contain_text("gw-web.boiler", timeout=20_000)
    # The escalation's first step pages this worker on the app channel.
    expect(worker.locator("#page-notice")).to_contain_text("新告警：gw-web.boiler 温度过高",
                                                           timeout=20_000)
    row.click()
    history = worker.locator("#history")
    expect(history).to_contain_text("升级上报", timeout=20_000)
    expect(history).to_contain_text("worker-g01")
    # Nobody accepts: 3 s later the grid leader is paged, and the page shows it live.
    expect(history).to_contain_text("leader → leader-g01", timeout=20_000)
    expect(row).to_contain_text("已超时")
    expect(worker.locator("#actions")).not_to_contain_text("核查结案")

    worker.get_by_label("备注").fill("on my way")
    worker.get_by_role("button", name="受理", exact=True).click()
    accepted = history.locator("li").filter(has_text="待受理 → 处置中")
    expect(accepted).to_contain_text("受理 待受理 → 处置中 · worker-g01")
    expect(accepted).to_contain_text("：on my way")
    worker.get_by_label("备注").fill("valve replaced")
    worker.get_by_label("照片（链接，每行一个）").fill("upload://valve.jpg")
    worker.get_by_role("button", name="办结", exact=True).click()
    resolved = history.locator("li").filter(has_text="处置中 → 待核查")
    expect(resolved).to_contain_text("办结 处置中 → 待核查 · worker-g01")
    expect(resolved).to_contain_text("：valve replaced [1 张照片]")
    shot(worker, "web-worker-resolved.png")

    # The device reports the condition over (closing while it is active needs a reason).
    publish_incident(mosquitto, 2, "gw-web.boiler", "over_temperature", AlarmState.CLEARED)
    control = browser.new_page()
    sign_in(control, lifecycle_base, "control")
    control.locator("#incidents tbody tr").first.click()
    expect(control.locator("#detail-fields")).to_contain_text("已消除", timeout=20_000)
    control.get_by_role("button", name="核查结案").click()
    expect(control.locator("#history")).to_contain_text("核查结案 待核查 → 结案 · control")
    expect(control.locator("#detail-fields")).to_contain_text("结案")
    expect(control.locator("#actions button")).to_have_count(0)
    # The worker's board followed it live: finished work leaves the open board...
    expect(worker.locator("#incidents tbody tr")).to_have_count(0)
    expect(worker.locator("#no-incidents")).to_be_visible()
    # ...and is there, closed, with finished work shown.
    worker.get_by_label("显示已结案").check()
    expect(worker.locator("#incidents tbody tr").first).to_contain_text("结案")


def publish_camera_incident(mosquitto: Mosquitto, seq: int, point: str) -> None:
    """A camera's intrusion and its JPEG (the edge sends them as two messages, seq and seq+1)."""
    frame = np.full((120, 160, 3), 90, np.uint8)
    cv2.rectangle(frame, (60, 30), (90, 110), (0, 0, 255), 3)
    ok, jpeg = cv2.imencode(".jpg", frame)
    assert ok
    incident = Incident(gateway="gw-web", seq=seq, ts=utc_now(), point=point, type="intrusion",
                        severity=Severity.MAJOR, has_snapshot=True)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="gw-web")
    client.connect("127.0.0.1", mosquitto.port)
    client.loop_start()
    try:
        client.publish(topic_for("gw-web", Kind.INCIDENT), encode(incident), qos=1
                       ).wait_for_publish(10)
        client.publish(topic_for("gw-web", Kind.SNAPSHOT, incident.id),
                       tag_snapshot(jpeg.tobytes(), seq + 1), qos=1).wait_for_publish(10)
    finally:
        client.loop_stop()
        client.disconnect()


def test_a_camera_incident_shows_its_snapshot_and_others_show_none(
    browser: Browser, server_base: str, mosquitto: Mosquitto
) -> None:
    publish_incident(mosquitto, 1, "gw-web.boiler", "over_temperature")
    publish_camera_incident(mosquitto, 2, "gw-web.boiler")
    page = browser.new_page()
    sign_in(page, server_base, "control")
    rows = page.locator("#incidents tbody tr")
    expect(rows).to_have_count(2, timeout=20_000)
    # The JPEG is a message of its own and may be stored a moment after its incident is listed.
    # The page's session is in an httpOnly cookie it cannot read: a script's token instead.
    headers = {"Authorization": f"Bearer {login(server_base, 'control', 'demo')}"}
    listed = httpx.get(f"{server_base}/api/v1/incidents", params={"type": "intrusion"},
                       headers=headers, trust_env=False).json()
    wait_until(lambda: httpx.get(f"{server_base}/api/v1/incidents/{listed[0]['id']}/snapshot",
                                 headers=headers, trust_env=False).status_code == 200,
               20, "the snapshot stored")
    snapshot = page.locator("#detail-snapshot")
    rows.filter(has_text="区域入侵").click()
    expect(snapshot).to_be_visible(timeout=20_000)
    assert snapshot.evaluate("img => img.naturalWidth") == 160  # the JPEG itself, decoded
    rows.filter(has_text="温度过高").click()
    expect(page.locator("#detail-fields")).to_contain_text("温度过高")
    expect(snapshot).to_be_hidden()
