"""The browser session in a real Chromium: the cookie is httpOnly, Secure and SameSite=Strict
and the page never sees it; a hostile page on another origin (a second local server) cannot
act with it; signing out (here or everywhere) ends the live stream of every tab and device;
an idle session ends by itself. Screenshots of sign-in and board, desktop and phone."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect
from test_web_page import POINTS, publish_incident, sign_in

from gridsense_devtools.http import http_json, login
from gridsense_devtools.processes import Procs, wait_until
from gridsense_devtools.server_process import launch_server, write_registry_and_config
from gridsense_devtools.services import InfluxDB, Mosquitto

SHOTS = Path("test-artifacts/screenshots")
DESKTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}
ENDED = "会话已结束"
CHROMIUM = "/usr/bin/chromium"  # the same as conftest.py's (the skip needs it here)

pytestmark = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None,
    reason="Debian's chromium is not installed (scripts/test installs it)",
)


def _serve(tmp_path: Path, mosquitto: Mosquitto, influx: tuple[InfluxDB, str],
           sessions: str, throttle: str = "{}") -> Iterator[str]:
    procs = Procs(tmp_path)
    try:
        config, base = write_registry_and_config(tmp_path, mosquitto.port, influx[0].url,
                                                 influx[1], POINTS)
        config.write_text(config.read_text() +
                          f"auth:\n  sessions: {sessions}\n  throttle: {throttle}\n")
        launch_server(procs, config, base)
        yield base
    finally:
        procs.stop_all()


@pytest.fixture
def server_base(tmp_path: Path, mosquitto: Mosquitto,
                influx: tuple[InfluxDB, str]) -> Iterator[str]:
    yield from _serve(tmp_path, mosquitto, influx, "{stream_check_s: 0.5}")


@pytest.fixture
def idle_base(tmp_path: Path, mosquitto: Mosquitto,
              influx: tuple[InfluxDB, str]) -> Iterator[str]:
    yield from _serve(tmp_path, mosquitto, influx, "{idle_s: 3, stream_check_s: 0.5}",
                      "{free_failures: 1, base_delay_s: 600}")


def _sign_in_form(page: Page, base: str, shot: str) -> None:
    page.goto(base + "/")
    expect(page.get_by_role("button", name="登录", exact=True)).to_be_visible()
    page.screenshot(path=str(SHOTS / shot))


def _signed_in(page: Page, base: str, username: str) -> None:
    sign_in(page, base, username)
    expect(page.locator("#board")).to_be_visible()
    expect(page.locator("#live")).to_be_visible()


def test_the_cookie_is_out_of_the_pages_reach_and_signing_out_ends_every_stream(
    browser: Browser, server_base: str
) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    desk = browser.new_context(viewport=DESKTOP)
    page = desk.new_page()
    _sign_in_form(page, server_base, "login-desktop.png")
    _signed_in(page, server_base, "control")
    [cookie] = desk.cookies()
    assert (cookie["name"], cookie["httpOnly"], cookie["secure"], cookie["sameSite"]) == (
        "__Host-gridsense", True, True, "Strict")
    assert page.evaluate("() => document.cookie") == ""  # the script cannot read it
    assert page.evaluate("() => sessionStorage.length + localStorage.length") == 0
    page.screenshot(path=str(SHOTS / "board-desktop.png"))

    # A second tab shares the cookie; a reload stays signed in.
    tab = desk.new_page()
    tab.goto(server_base + "/")
    expect(tab.locator("#live")).to_be_visible()
    page.get_by_role("button", name="退出登录").click()
    expect(page.locator("#login")).to_be_visible()
    expect(page.locator("#login-error")).to_have_text("")  # signed out on purpose: no alarm
    # The tab's stream is closed by the server (the session ended), and the tab says so.
    expect(tab.locator("#login")).to_be_visible(timeout=20_000)
    expect(tab.locator("#login-error")).to_contain_text(ENDED)
    expect(tab.locator("#live")).to_be_hidden()
    desk.close()

    # Two devices; "sign out everywhere" on one ends the other. The phone opens the server
    # as http://localhost (Chromium keeps Secure cookies there too).
    phone = browser.new_context(viewport=PHONE)
    on_phone = phone.new_page()
    local = server_base.replace("127.0.0.1", "localhost")
    _sign_in_form(on_phone, local, "login-phone.png")
    _signed_in(on_phone, local, "worker-g01")
    assert [c["secure"] for c in phone.cookies()] == [True]
    on_phone.screenshot(path=str(SHOTS / "board-phone.png"), full_page=True)
    laptop = browser.new_context(viewport=DESKTOP).new_page()
    _signed_in(laptop, server_base, "worker-g01")
    laptop.get_by_role("button", name="退出所有设备").click()
    expect(laptop.locator("#login")).to_be_visible()
    expect(on_phone.locator("#login-error")).to_contain_text(ENDED, timeout=20_000)
    audit = http_json("GET", f"{server_base}/api/v1/audit?action=logout.everywhere",
                      login(server_base, "control", "demo"))
    assert [(e["actor"], e["target"]) for e in audit["entries"]] == [("worker-g01",
                                                                      "worker-g01")]


class _Hostile(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:  # keep the test output clean
        pass


@pytest.fixture
def hostile_site(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A second local web server (another port: same site, another origin) for hostile pages."""
    folder = tmp_path / "hostile"
    folder.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0),
                                 partial(_Hostile, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_hostile_page_in_another_tab_cannot_act_on_an_incident(
    browser: Browser, server_base: str, mosquitto: Mosquitto,
    hostile_site: tuple[Path, str]
) -> None:
    token = login(server_base, "control", "demo")
    publish_incident(mosquitto, 1, "gw-web.boiler", "over_temperature")
    wait_until(lambda: http_json("GET", f"{server_base}/api/v1/incidents", token), 20,
               "the incident stored")
    [incident] = http_json("GET", f"{server_base}/api/v1/incidents", token)
    target = f"{server_base}/api/v1/incidents/{incident['id']}/accept"
    folder, hostile = hostile_site
    # What a hostile page can send without a preflight: a simple fetch with the cookie...
    (folder / "fetch.html").write_text(f"""<!doctype html><title>waiting</title><script>
fetch("{target}", {{method: "POST", mode: "no-cors", credentials: "include",
  headers: {{"Content-Type": "text/plain"}}, body: '{{"note": "pwned"}}'}})
  .finally(() => {{ document.title = "sent"; }});
</script>""")
    # ...and a form posted across origins, JSON-shaped through a text/plain field.
    (folder / "form.html").write_text(f"""<!doctype html><form method="post" action="{target}"
 enctype="text/plain"><input name='{{"note": "pwned", "x": "' value='"}}'></form>
<script>document.forms[0].submit();</script>""")

    context = browser.new_context(viewport=DESKTOP)
    board = context.new_page()
    _signed_in(board, server_base, "control")
    expect(board.locator("#incidents tbody tr")).to_have_count(1)
    SHOTS.mkdir(parents=True, exist_ok=True)
    board.screenshot(path=str(SHOTS / "board-incident-desktop.png"))
    attacker = context.new_page()
    attacker.goto(f"{hostile}/fetch.html")
    expect(attacker).to_have_title("sent")
    attacker.goto(f"{hostile}/form.html")
    expect(attacker.locator("body")).to_contain_text("cross-site request refused")

    after = http_json("GET", f"{server_base}/api/v1/incidents/{incident['id']}", token)
    assert after["state"] == "new" and all(h["action"] != "accept" for h in after["history"])

    # A link in a message, followed from another *site* (localhost, not 127.0.0.1): the
    # Strict cookie is not sent with that navigation, yet the page's own requests carry it.
    (folder / "link.html").write_text(f'<a href="{server_base}/#incident={incident["id"]}">'
                                      "open</a>")
    attacker.goto(f"{hostile.replace('127.0.0.1', 'localhost')}/link.html")
    attacker.get_by_role("link", name="open").click()
    expect(attacker.locator("#live")).to_be_visible()
    expect(attacker.locator("#detail-id")).to_have_text(incident["id"])

    def refusals() -> list[dict]:
        found = http_json("GET", f"{server_base}/api/v1/audit?action=security.refused", token)
        return found["entries"]

    wait_until(lambda: len(refusals()) == 2, 20, "both refusals audited")
    assert all(hostile in e["detail"] and e["actor"] == "control" for e in refusals())


def test_an_idle_session_ends_by_itself_and_guessing_is_slowed(
    browser: Browser, idle_base: str
) -> None:
    page = browser.new_page(viewport=PHONE)
    _signed_in(page, idle_base, "worker-g01")
    # Nobody touches the page; its timers' requests do not count as activity.
    expect(page.locator("#login")).to_be_visible(timeout=30_000)
    expect(page.locator("#login-error")).to_contain_text(ENDED)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "session-ended-phone.png"))
    page.reload()
    expect(page.locator("#login")).to_be_visible()  # the cookie no longer signs in

    # Guessing: one free failure, then a wait of 600 s the page reports (HTTP 429).
    sign_in(page, idle_base, "worker-g02", "guess-1")
    expect(page.locator("#login-error")).to_have_text("用户名或密码错误")
    sign_in(page, idle_base, "worker-g02", "guess-2")
    expect(page.locator("#login-error")).to_have_text("用户名或密码错误")
    sign_in(page, idle_base, "worker-g02")  # the right one, too soon
    expect(page.locator("#login-error")).to_contain_text("尝试次数过多")
    expect(page.locator("#board")).to_be_hidden()
