"""The control room's board in a real Chromium, at the control room's two screen sizes and in
both languages: incidents arrive live (no reload) and stand in the server's urgency order, names
first; an incident's chart draws the point's readings from a real InfluxDB with its threshold;
closing an incident whose alarm is still active asks for a reason, which lands in the history;
the grid tree filters the board. Screenshots of every screen in test-artifacts/screenshots/."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from playwright.sync_api import Browser, Page, expect
from test_https_phone import WATCH_CSP
from test_web_page import shot, sign_in

from gridsense_devtools.http import http_json, login
from gridsense_devtools.processes import Procs, wait_until
from gridsense_devtools.server_process import launch_server, write_registry_and_config
from gridsense_devtools.services import InfluxDB, Mosquitto
from gridsense_protocol import (
    AlarmState,
    Incident,
    Kind,
    Reading,
    Severity,
    Telemetry,
    encode,
    topic_for,
    utc_now,
)

CHROMIUM = "/usr/bin/chromium"  # the same as conftest.py's (the skip needs it here)
pytestmark = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None,
    reason="Debian's chromium is not installed (scripts/test installs it)",
)

GATEWAY = "gw-cr"
POINTS = {"gw-cr.boiler": (GATEWAY, "g01-a"), "gw-cr.pump": (GATEWAY, "g01-a"),
          "gw-cr.substation": (GATEWAY, "g02-a")}
NAMES = {"gw-cr.boiler": "1号楼锅炉房", "gw-cr.pump": "水泵房", "gw-cr.substation": "8号楼配电室"}
CATALOGUES = Path(__file__).resolve().parents[2] / "server/src/gridsense_server/i18n"
SCREENS = [pytest.param({"width": 1366, "height": 768}, "zh-CN", id="1366x768-zh"),
           pytest.param({"width": 1920, "height": 1080}, "en", id="1920x1080-en")]
# The line colour of the chart's mean (SeriesChart.tsx): its pixels prove the line was drawn.
MEAN_RGB = (0x15, 0x5E, 0xEF)


def words(language: str) -> dict[str, Any]:
    return json.loads((CATALOGUES / f"{language}.json").read_text(encoding="utf-8"))


@pytest.fixture
def server_base(tmp_path: Path, mosquitto: Mosquitto,
                influx: tuple[InfluxDB, str]) -> Iterator[str]:
    procs = Procs(tmp_path)
    try:
        config, base = write_registry_and_config(tmp_path, mosquitto.port, influx[0].url,
                                                 influx[1], POINTS)
        registry = tmp_path / "registry.yaml"
        text = registry.read_text(encoding="utf-8")
        for point, name in NAMES.items():
            text = text.replace(f"name: {point}, location: B1", f"name: {name}, location: B1")
        registry.write_text(text, encoding="utf-8")
        config.write_text(config.read_text() + "display: {title: 莲园社区网格化管理平台}\n")
        launch_server(procs, config, base)
        yield base
    finally:
        procs.stop_all()


class Edge:
    """The gateway's side: readings and incidents over the real broker, in sequence."""

    def __init__(self, mosquitto: Mosquitto) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=GATEWAY)
        self.client.connect("127.0.0.1", mosquitto.port)
        self.client.loop_start()
        self.seq = 0

    def _send(self, kind: Kind, message: Any) -> None:
        self.client.publish(topic_for(GATEWAY, kind), encode(message), qos=1).wait_for_publish(10)

    def readings(self, point: str, values: list[float], every_s: int = 60) -> None:
        now = utc_now()
        self.seq += 1
        self._send(Kind.TELEMETRY, Telemetry(gateway=GATEWAY, seq=self.seq, ts=now, readings=[
            Reading(point=point, metric="temperature", value=v, unit="°C",
                    ts=now - timedelta(seconds=every_s * (len(values) - i)))
            for i, v in enumerate(values)]))

    def incident(self, point: str, kind: str, severity: Severity,
                 state: AlarmState = AlarmState.ACTIVE) -> None:
        self.seq += 1
        self._send(Kind.INCIDENT, Incident(gateway=GATEWAY, seq=self.seq, ts=utc_now(),
                                           point=point, type=kind, severity=severity,
                                           state=state, value=71.5, threshold=60, unit="°C"))

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def edge(mosquitto: Mosquitto) -> Iterator[Edge]:
    publisher = Edge(mosquitto)
    yield publisher
    publisher.close()


def open_board(browser: Browser, base: str, viewport: dict[str, int], language: str) -> Page:
    page = browser.new_context(viewport=viewport).new_page()
    page.add_init_script(WATCH_CSP)
    sign_in(page, base, "control")
    expect(page.locator("#live")).to_be_visible()
    if language == "en":
        page.get_by_role("button", name="English").click()
    expect(page.locator("#board-title")).to_contain_text(words(language)["board"]["title"])
    expect(page.locator("#app-title")).to_have_text("莲园社区网格化管理平台")
    return page


def line_pixels(page: Page) -> int:
    """Pixels of the chart's canvas in the mean line's colour."""
    return page.locator("#series-chart canvas").first.evaluate("""(canvas, rgb) => {
        const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
        let n = 0;
        for (let i = 0; i < data.length; i += 4) {
          if (Math.abs(data[i] - rgb[0]) < 40 && Math.abs(data[i + 1] - rgb[1]) < 40 &&
              Math.abs(data[i + 2] - rgb[2]) < 40 && data[i + 3] > 200) n++;
        }
        return n;
    }""", list(MEAN_RGB))


@pytest.mark.parametrize(("viewport", "language"), SCREENS)
def test_the_control_rooms_board(browser: Browser, server_base: str, edge: Edge,
                                 viewport: dict[str, int], language: str) -> None:
    w = words(language)
    size = f"{viewport['width']}x{viewport['height']}-{language}"
    control = login(server_base, "control", "demo")
    # An hour of the boiler's readings, warming past its 60 °C limit at the end.
    edge.readings("gw-cr.boiler", [40 + 0.5 * i for i in range(64)])
    page = open_board(browser, server_base, viewport, language)
    expect(page.locator("#no-incidents")).to_be_visible()
    page.evaluate("window.__sameDocument = true")  # gone if the page reloads

    # Arrive live, and each lands where the server's urgency order puts it.
    edge.incident("gw-cr.boiler", "over_temperature", Severity.MINOR)
    rows = page.locator("#incidents tbody tr")
    expect(rows).to_have_count(1, timeout=20_000)
    edge.incident("gw-cr.substation", "over_temperature", Severity.CRITICAL)
    edge.incident("gw-cr.pump", "rapid_rise", Severity.MAJOR)
    expect(rows).to_have_count(3, timeout=20_000)
    assert page.evaluate("window.__sameDocument") is True
    expect(rows.nth(0)).to_contain_text(w["severities"]["critical"])
    expect(rows.nth(0)).to_contain_text("8号楼配电室")  # the name first, the id beside it
    expect(rows.nth(0)).to_contain_text("gw-cr.substation")
    expect(rows.nth(1)).to_contain_text(w["incident_types"]["rapid_rise"])
    expect(rows.nth(2)).to_contain_text(w["severities"]["minor"])
    ordered = http_json("GET", f"{server_base}/api/v1/incidents?order=urgency", control)
    assert [row.get_attribute("data-id") for row in rows.all()] == [i["id"] for i in ordered]
    # A live deadline countdown on every open row.
    left = w["relative_time"]["due_in"].replace("{duration}", "").strip()  # 剩余 / left
    expect(rows.nth(0)).to_contain_text(left)
    # The grid tree's counts follow: the street holds all three, the second grid one.
    tree = page.locator("#grid-tree")
    expect(tree.locator('[data-node="hx"] .open-count')).to_have_text("3")
    expect(tree.locator('[data-node="g02"] .open-count')).to_have_text("1")
    shot(page, f"board-{size}.png")

    # The boiler's detail, opened from the keyboard: its chart draws InfluxDB's readings.
    boiler = next(i for i in ordered if i["point"] == "gw-cr.boiler")
    wait_until(lambda: http_json("GET", f"{server_base}/api/v1/points/gw-cr.boiler/series",
                                 control)["points"], 30, "the boiler's readings in InfluxDB")
    rows.filter(has_text="1号楼锅炉房").get_by_role("button").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#detail-id")).to_have_text(boiler["id"])
    expect(page.locator("#series-chart canvas").first).to_be_visible(timeout=20_000)
    wait_until(lambda: line_pixels(page) > 100, 20, "the mean line drawn")
    expect(page.locator("#series-chart")).to_have_attribute("aria-label", re.compile("1号楼锅炉房"))
    expect(page.locator("#detail-fields")).to_contain_text(w["alarm"]["active"])
    page.locator("#series-chart").hover()  # the chart's tooltip too stays within the CSP
    shot(page, f"detail-{size}.png")
    assert page.evaluate("window.__cspViolations") == []

    # The grid worker opens the page they were sent (a read receipt), then handles it; the
    # device still reports the alarm.
    worker = login(server_base, "worker-g01", "demo")
    wait_until(lambda: any(p["recipient"] == "worker-g01" for p in http_json(
        "GET", f"{server_base}/api/v1/incidents/{boiler['id']}/pages", control)), 30,
        "worker-g01 paged about the boiler")
    http_json("GET", f"{server_base}/api/v1/incidents/{boiler['id']}", worker)
    for action in ("accept", "resolve"):
        http_json("POST", f"{server_base}/api/v1/incidents/{boiler['id']}/{action}", worker,
                  {"note": "现场处理"})
    verify = page.get_by_role("button", name=w["actions"]["verify"], exact=True)
    expect(verify).to_be_visible(timeout=20_000)  # the detail followed it live
    verify.click()
    dialog = page.locator("#reason-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text(w["errors"]["close_reason_required"])
    confirm = dialog.get_by_role("button", name=w["actions"]["verify"], exact=True)
    expect(confirm).to_be_disabled()  # no reason, no closing
    shot(page, f"close-reason-{size}.png")
    dialog.get_by_label(w["board"]["reason"]).fill("传感器误报，现场温度正常")
    confirm.click()
    expect(dialog).to_be_hidden()
    expect(page.locator("#history")).to_contain_text("传感器误报，现场温度正常")
    # The worker's reading is in the history, in time order, by name and channel.
    expect(page.locator("#history .history-read")).to_contain_text(w["board"]["read_event"])
    expect(page.locator("#history .history-read")).to_contain_text("张伟")
    expect(page.locator("#detail-fields")).to_contain_text(w["states"]["closed"])
    expect(rows).to_have_count(2)  # finished work leaves the open board
    after = http_json("GET", f"{server_base}/api/v1/incidents/{boiler['id']}", control)
    assert (after["state"], after["alarm"]) == ("closed", "active")

    # The grid tree: the second grid's open work only. Escape closes the detail.
    page.keyboard.press("Escape")
    expect(page.locator("#detail")).to_have_count(0)
    expect(tree.locator('[data-node="g01"] .open-count')).to_have_text("1")  # the boiler closed
    tree.locator('[data-node="g02"]').click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("8号楼配电室")
    expect(page.locator("#filter-grid")).to_contain_text("第二网格")
    shot(page, f"board-grid-{size}.png")
    page.locator("#filter-grid").click()
    expect(rows).to_have_count(2)
    # The other filters, each a labelled control: a severity, then only overdue work (none yet).
    page.get_by_label(w["board"]["filter_severity"]).select_option("critical")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("8号楼配电室")
    page.get_by_label(w["board"]["filter_severity"]).select_option("")
    expect(rows).to_have_count(2)
    page.get_by_label(w["board"]["filter_overdue"]).check()
    expect(page.locator("#no-incidents")).to_contain_text(w["board"]["none_filtered"])
