"""The grid worker's phone app in a real Chromium: a phone viewport with touch and a zh-CN
locale, over HTTPS by a name other than localhost, trusting the deployment CA. A page sent while
the app is closed waits in the inbox; the worker accepts, checks in by the camera (Chromium's
fake camera fed a video of the point's label) and by the typed code, resolves with a photo; an
action taken offline is queued and sent once when the network is back. Screenshots are kept."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from playwright.sync_api import Browser, Page, expect, sync_playwright
from test_https_phone import CHROMIUM, NAME, PHONE, WATCH_CSP, _nss_home, pytestmark
from test_web_page import FAST_LIFECYCLE, publish_incident
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from gridsense_devtools.fake_camera import qr_picture, write_y4m
from gridsense_devtools.http import http_json, login, trust_ca
from gridsense_devtools.processes import Procs, wait_until
from gridsense_devtools.server_process import launch_server, write_registry_and_config
from gridsense_devtools.services import InfluxDB, Mosquitto
from gridsense_server.pki import DeploymentCA

__all__ = ["pytestmark"]  # the skip when Chromium or certutil is missing
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
POINTS = {"gw-web.boiler": ("gw-web", "g01-a"), "gw-web.pump": ("gw-web", "g01-a")}
NAMES = {"gw-web.boiler": "1号楼锅炉房", "gw-web.pump": "地下水泵房"}


class Server:
    def __init__(self, url: str, base: str) -> None:
        self.url, self.base = url, base  # by the test name (the browser); by 127.0.0.1
        self.tokens: dict[str, str] = {}

    def call(self, user: str, method: str, path: str, body: Any = None) -> Any:
        if user not in self.tokens:
            self.tokens[user] = login(self.base, user, "demo")
        return http_json(method, self.base + path, self.tokens[user], body)

    def incident_of(self, point: str) -> dict[str, Any] | None:
        found = [i for i in self.call("control", "GET", "/api/v1/incidents")
                 if i["point"] == point]
        return found[0] if found else None


@pytest.fixture
def server(tmp_path: Path, mosquitto: Mosquitto,
           influx: tuple[InfluxDB, str]) -> Iterator[tuple[Server, Path]]:
    ca, _ = DeploymentCA.init(tmp_path / "ca", common_name="gridsense test CA")
    trust_ca(ca.cert_file)
    procs = Procs(tmp_path)
    try:
        config, base = write_registry_and_config(
            tmp_path, mosquitto.port, influx[0].url, influx[1], POINTS,
            http_tls=f"{{ca_dir: {tmp_path / 'ca'}, names: [{NAME}, 127.0.0.1]}}")
        registry = tmp_path / "registry.yaml"
        text = registry.read_text(encoding="utf-8")
        for point, name in NAMES.items():
            text = text.replace(f"name: {point}, location: B1",
                                f"name: {name}, location: 地下一层")
        registry.write_text(text, encoding="utf-8")
        url = f"https://{NAME}:{base.rsplit(':', 1)[1]}"
        config.write_text(config.read_text() + FAST_LIFECYCLE.replace(
            "  tick_s: 0.2\n", f"  tick_s: 0.2\n  public_url: '{url}'\n"))
        launch_server(procs, config, base)
        yield Server(url, base), ca.cert_file
    finally:
        procs.stop_all()


@contextlib.contextmanager
def _phone_browser(home: Path, video: Path) -> Iterator[Browser]:
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  f"--host-resolver-rules=MAP {NAME} 127.0.0.1",
                  "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                  f"--use-file-for-fake-video-capture={video}"],
            env={**os.environ, "HOME": str(home)})
        try:
            yield browser
        finally:
            browser.close()


def _shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"phone_{name}.png"), full_page=True)


def _jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (800, 600), (40, 120, 200)).save(out, "JPEG")
    return out.getvalue()


class ControlRoomStream:
    """The control room's live stream (wss, a bearer token), read in a thread: what it was
    told, as (event, incident id), in order."""

    def __init__(self, server: Server, ca_file: Path) -> None:
        token = login(server.base, "control", "demo")
        context = ssl.create_default_context(cafile=str(ca_file))
        url = server.base.replace("https://", "wss://") + f"/api/v1/stream?token={token}"
        self.events: list[tuple[str, str]] = []
        self.opened = threading.Event()
        self.socket: Any = None
        self.thread = threading.Thread(target=self._read, args=(url, context), daemon=True)
        self.thread.start()
        assert self.opened.wait(30), "the control room's stream did not open"

    def _read(self, url: str, context: ssl.SSLContext) -> None:
        with connect(url, ssl=context) as socket:
            self.socket = socket
            self.opened.set()
            with contextlib.suppress(ConnectionClosed, OSError):
                while True:
                    event = json.loads(socket.recv())
                    if event.get("type") == "incident":
                        self.events.append((event.get("event", ""), event["incident"]["id"]))

    def close(self) -> None:
        self.socket.close()
        self.thread.join(10)


def _history(server: Server, incident: str) -> list[str]:
    detail = server.call("control", "GET", f"/api/v1/incidents/{incident}")
    return [h["action"] for h in detail["history"] if h["action"] not in ("escalate", "remind")]


def test_worker_goes_from_a_page_to_a_resolved_incident_on_a_phone(
        server: tuple[Server, Path], mosquitto: Mosquitto, tmp_path: Path) -> None:
    srv, ca_file = server
    # Paged while the app is closed: the page must wait in the inbox.
    publish_incident(mosquitto, 1, "gw-web.boiler", "over_temperature")
    wait_until(lambda: srv.incident_of("gw-web.boiler") is not None, 30, "incident opened")
    boiler = srv.incident_of("gw-web.boiler")
    assert boiler is not None
    wait_until(lambda: srv.call("worker-g01", "GET", "/api/v1/inbox/unread")["unread"] == 1,
               30, "the page in worker-g01's inbox")
    label = srv.call("control", "GET", "/api/v1/points/gw-web.boiler/label")
    video = write_y4m(qr_picture(label["qr"]), tmp_path / "label.y4m")
    control_room = ControlRoomStream(srv, ca_file)

    with _phone_browser(_nss_home(tmp_path / "home", ca_file), video) as browser:
        context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True,
                                      has_touch=True, locale="zh-CN")
        context.grant_permissions(["camera"], origin=srv.url)
        page = context.new_page()
        page.add_init_script(WATCH_CSP)
        page.goto(srv.url + "/")
        page.get_by_label("用户名").fill("worker-g01")
        page.get_by_label("密码").fill("demo")
        page.get_by_role("button", name="登录").click()

        # A worker on a phone opens on the phone page; the inbox tab shows one unread page.
        expect(page.locator(".phone-tabs")).to_be_visible()
        assert page.evaluate("window.isSecureContext") is True
        expect(page.locator(".phone-badge")).to_have_text("1")
        card = page.locator(f'.phone-card[data-incident="{boiler["id"]}"]')
        expect(card).to_contain_text("1号楼锅炉房")
        # The deadline counts down (the fast policy's 3 s to accept is over by now).
        expect(card.locator(".phone-due")).to_have_text(re.compile(r"^(剩余|已超时) \S+"))
        _shot(page, "tasks")

        page.locator("#m-inbox-tab").tap()
        item = page.locator(f'.phone-page[data-incident="{boiler["id"]}"]')
        expect(item).to_have_class("phone-page unread")
        _shot(page, "inbox")
        item.tap()
        expect(page.locator(".phone-badge")).to_have_count(0)  # read, on the server too
        assert srv.call("worker-g01", "GET", "/api/v1/inbox/unread")["unread"] == 0

        page.get_by_role("button", name="受理").tap()
        expect(page.locator(".phone-status")).to_contain_text("已受理")
        _shot(page, "accepted")

        # Check in by the camera: the fake camera shows the label; jsQR reads it.
        page.get_by_role("button", name="扫码签到").tap()
        expect(page.locator(".phone-status")).to_contain_text("已扫码签到", timeout=20_000)
        # And by the code typed from under the label.
        page.get_by_label("签到编码").fill(label["code"])
        page.get_by_role("button", name="编码签到").tap()
        expect(page.locator(".phone-status")).to_contain_text("已编码签到")

        page.locator('input[type="file"]').set_input_files(
            [{"name": "IMG_0001.jpg", "mimeType": "image/jpeg", "buffer": _jpeg()}])
        expect(page.locator(".phone-thumbs img")).to_have_count(1)
        page.get_by_label("处置说明").fill("已关闭阀门，温度回落")
        _shot(page, "resolve")
        page.get_by_role("button", name="办结（1 张照片）").tap()
        expect(page.locator(".phone-status")).to_contain_text("已办结")
        expect(page.locator(".phone-history-photo")).to_have_count(1)
        expect(page.locator(".phone-history-photo")).not_to_have_js_property("naturalWidth", 0)
        _shot(page, "resolved")
        assert _history(srv, boiler["id"]) == ["open", "accept", "checkin_qr", "checkin_code",
                                               "resolve"]
        # The control room sees the photo in the incident's history, not a count.
        desk = browser.new_context(viewport={"width": 1366, "height": 900}, locale="zh-CN")
        board = desk.new_page()
        board.goto(f"{srv.url}/#/board/{boiler['id']}")
        board.get_by_label("用户名").fill("control")
        board.get_by_label("密码").fill("demo")
        board.get_by_role("button", name="登录").click()
        photo = board.locator("#history .history-photos img")
        expect(photo).to_have_count(1)
        expect(photo).not_to_have_js_property("naturalWidth", 0)
        photo.scroll_into_view_if_needed()
        board.screenshot(path=str(SCREENSHOTS / "control_room_photo.png"))
        desk.close()
        # The control room was told each step as it happened.
        wait_until(lambda: ("resolve", boiler["id"]) in control_room.events, 10, "live resolve")
        steps = [e for e, i in control_room.events if i == boiler["id"] and e != "escalate"]
        assert steps[-4:] == ["accept", "checkin_qr", "checkin_code", "resolve"], steps

        # Offline: a new page arrives while online, the accept is taken without a network.
        publish_incident(mosquitto, 2, "gw-web.pump", "over_temperature")
        wait_until(lambda: srv.incident_of("gw-web.pump") is not None, 30, "second incident")
        pump = srv.incident_of("gw-web.pump")
        assert pump is not None
        page.locator(".phone-back").tap()
        pump_card = page.locator(f'.phone-card[data-incident="{pump["id"]}"]')
        expect(pump_card).to_be_visible()
        expect(page.locator(".phone-badge")).to_have_text("1")  # the live page
        pump_card.locator(".phone-card-body").tap()
        expect(page.get_by_role("button", name="受理")).to_be_visible()
        context.set_offline(True)
        page.get_by_role("button", name="受理").tap()
        expect(page.locator(".phone-status")).to_contain_text("已保存")
        expect(page.locator(".phone-queue")).to_contain_text("1 项操作")
        _shot(page, "offline_queued")
        assert srv.incident_of("gw-web.pump")["state"] == "new"  # type: ignore[index]
        context.set_offline(False)
        expect(page.locator(".phone-queue")).to_have_count(0, timeout=20_000)
        assert srv.incident_of("gw-web.pump")["state"] == "accepted"  # type: ignore[index]
        assert _history(srv, pump["id"]) == ["open", "accept"]  # sent once

        assert page.evaluate("window.__cspViolations") == []
        # The service worker cached the shell: with no network at all the app still opens.
        worker = page.evaluate("async () => (await navigator.serviceWorker.ready).active.scriptURL")
        assert worker == srv.url + "/sw.js"
        wait_until(lambda: page.evaluate("caches.match('/').then((r) => !!r)"), 30,
                   "the shell in the service worker's cache")
        context.set_offline(True)
        page.reload()
        expect(page.locator("#app-title")).to_have_text("网格化智能感知平台")
        _shot(page, "offline_shell")
        context.close()
    control_room.close()


def test_on_plain_http_the_phone_says_why_camera_and_install_are_missing(
        tmp_path: Path, mosquitto: Mosquitto, influx: tuple[InfluxDB, str]) -> None:
    """Plain HTTP by a name (not localhost): no secure context. The page says so and keeps the
    typed code and the file-picker camera, which work without one."""
    procs = Procs(tmp_path)
    try:
        config, base = write_registry_and_config(tmp_path, mosquitto.port, influx[0].url,
                                                 influx[1], POINTS)
        # A plain-HTTP deployment reached by a name must send its cookie without Secure.
        config.write_text(config.read_text() + "auth: {sessions: {cookie_secure: false}}\n"
                          + FAST_LIFECYCLE)
        launch_server(procs, config, base)
        publish_incident(mosquitto, 1, "gw-web.boiler", "over_temperature")
        srv = Server(base, base)
        wait_until(lambda: srv.incident_of("gw-web.boiler") is not None, 30, "incident")
        boiler = srv.incident_of("gw-web.boiler")
        assert boiler is not None
        srv.call("worker-g01", "POST", f"/api/v1/incidents/{boiler['id']}/accept", {})
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=CHROMIUM,
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                      f"--host-resolver-rules=MAP {NAME} 127.0.0.1"])
            page = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True,
                                       locale="zh-CN").new_page()
            page.goto(f"http://{NAME}:{base.rsplit(':', 1)[1]}/")
            page.get_by_label("用户名").fill("worker-g01")
            page.get_by_label("密码").fill("demo")
            page.get_by_role("button", name="登录").click()
            expect(page.locator(".phone-note")).to_contain_text("HTTP")
            assert page.evaluate("window.isSecureContext") is False
            page.locator(f'.phone-card[data-incident="{boiler["id"]}"] .phone-card-body').tap()
            expect(page.get_by_label("签到编码")).to_be_visible()
            expect(page.get_by_role("button", name="扫码签到")).to_have_count(0)
            camera = page.locator('input[type="file"][capture]')
            expect(camera).to_have_count(1)
            _shot(page, "plain_http")
            browser.close()
    finally:
        procs.stop_all()
