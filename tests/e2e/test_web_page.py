"""The web page in a real Chromium: a grid worker signs in and sees their grid's incident arrive
live; another grid's incident never shows; a wrong password says so."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from playwright.sync_api import Browser, Page, expect, sync_playwright

from gridsense_protocol import Incident, Kind, Severity, encode, topic_for, utc_now

from devservices import InfluxDB, Mosquitto
from processes import Procs, start_server

CHROMIUM = "/usr/bin/chromium"
POINTS = {"gw-web.boiler": ("gw-web", "g01-a"), "gw-web.substation": ("gw-web", "g02-a")}

pytestmark = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None,
    reason="Debian's chromium is not installed (scripts/test installs it)",
)


@pytest.fixture
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        launched = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield launched
        launched.close()


@pytest.fixture
def server_base(
    tmp_path: Path, mosquitto: Mosquitto, influx: tuple[InfluxDB, str]
) -> Iterator[str]:
    procs = Procs(tmp_path)
    try:
        _proc, base, _config = start_server(
            procs, tmp_path, mosquitto.port, influx[0].url, influx[1], POINTS
        )
        yield base
    finally:
        procs.stop_all()


def publish_incident(mosquitto: Mosquitto, seq: int, point: str, kind: str) -> None:
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


def sign_in(page: Page, base: str, username: str, password: str = "demo") -> None:
    page.goto(base + "/")
    page.get_by_label("User").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def test_worker_sees_own_grids_incident_live(
    browser: Browser, server_base: str, mosquitto: Mosquitto, tmp_path: Path
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
    expect(rows.first).to_contain_text("over_temperature")
    expect(rows.first).to_contain_text("major")
    page.screenshot(path=str(tmp_path / "worker-g01.png"), full_page=True)

    # The control room sees both, straight from the API on load.
    control = browser.new_page()
    sign_in(control, server_base, "control")
    expect(control.locator("#incidents tbody tr")).to_have_count(2, timeout=20_000)


def test_phone_layout_and_wrong_password(
    browser: Browser, server_base: str, tmp_path: Path
) -> None:
    phone = browser.new_page(viewport={"width": 390, "height": 844})
    sign_in(phone, server_base, "worker-g02", "not-the-password")
    expect(phone.locator("#login-error")).to_have_text("Wrong user or password.")
    sign_in(phone, server_base, "worker-g02")
    expect(phone.locator("#board")).to_be_visible()
    expect(phone.locator("#login")).to_be_hidden()
    phone.screenshot(path=str(tmp_path / "phone.png"), full_page=True)
