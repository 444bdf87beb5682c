"""The statistics and gateways pages in a real Chromium, in Chinese and English, at the control
room's 1366×768 and the wall screen's 1920×1080: incidents raised by a gateway over MQTT and
handled through the API show in the statistics (and a worker's action arrives without a
reload); a gateway's state, health and a point's latest value from the real InfluxDB show on the
gateways page, kept current by the stream."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from playwright.sync_api import Browser, Page, expect

from gridsense_devtools.http import http_json, login
from gridsense_devtools.processes import Procs, wait_until
from gridsense_devtools.server_process import launch_server, write_registry_and_config
from gridsense_devtools.services import InfluxDB, Mosquitto
from gridsense_protocol import (
    DriverHealth,
    DriverState,
    Envelope,
    GatewayState,
    Health,
    Incident,
    Reading,
    Severity,
    Status,
    Telemetry,
    encode,
    topic_for,
    utc_now,
)

CHROMIUM = "/usr/bin/chromium"
SHOTS = Path("test-artifacts/screenshots")
GATEWAY = "gw-lab"
REGISTRY = """
streets:
  - id: hx
    name: 湖西街道
    communities:
      - id: ly
        name: 莲园社区
        grids:
          - {id: g01, name: 第一网格, micro_grids: [{id: g01-a, name: 1-3号楼}]}
          - {id: g02, name: 第二网格}
points:
  - {id: gw-lab.boiler, gateway: gw-lab, grid: g01-a, name: 1号楼锅炉房, location: 1号楼 B1}
  - {id: gw-lab.pump, gateway: gw-lab, grid: g01, name: 水泵房, location: 2号楼 B2}
  - {id: gw-lab.door, gateway: gw-lab, grid: g02, name: 东门门禁, location: 东门}
staff:
  - {username: control, name: 指挥室, role: control, grids: [], password: demo}
  - {username: worker-g01, name: 张伟, role: worker, grids: [g01], password: demo}
  - {username: worker-g02, name: 李娜, role: worker, grids: [g02], password: demo}
"""

pytestmark = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None,
    reason="Debian's chromium is not installed (scripts/test installs it)",
)


class Gateway:
    """A stand-in gateway: a real paho client publishing protocol v1 messages in sequence."""

    def __init__(self, port: int) -> None:
        self.seq = 0
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=GATEWAY)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def publish(self, message: Envelope) -> None:
        info = self.client.publish(topic_for(GATEWAY, message.kind), encode(message), qos=1)
        info.wait_for_publish(10)
        assert info.is_published()

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def base(tmp_path: Path, mosquitto: Mosquitto, influx: tuple[InfluxDB, str]) -> Iterator[str]:
    procs = Procs(tmp_path)
    try:
        config, url = write_registry_and_config(tmp_path, mosquitto.port, influx[0].url,
                                                influx[1], {})
        (tmp_path / "registry.yaml").write_text(REGISTRY, encoding="utf-8")
        launch_server(procs, config, url)
        yield url
    finally:
        procs.stop_all()


@pytest.fixture
def gateway(mosquitto: Mosquitto) -> Iterator[Gateway]:
    publisher = Gateway(mosquitto.port)
    yield publisher
    publisher.close()


def shot(page: Page, name: str) -> None:
    """A screenshot kept for a person to look at (test-artifacts/ is not committed)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / name), full_page=True)


def sign_in(browser: Browser, base: str, width: int, height: int, hash_: str) -> Page:
    page = browser.new_page(viewport={"width": width, "height": height})
    page.goto(base + "/")
    page.get_by_label("用户名").fill("control")
    page.get_by_label("密码").fill("demo")
    page.get_by_role("button", name="登录", exact=True).click()
    expect(page.locator("#board")).to_be_visible()
    page.goto(base + "/" + hash_)
    return page


def to_english(page: Page) -> None:
    page.get_by_role("button", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")


def _incident(gateway: Gateway, point: str, type_: str, severity: Severity,
              ts: datetime) -> Incident:
    return Incident(gateway=GATEWAY, seq=gateway.next_seq(), ts=ts, point=point, type=type_,
                    severity=severity, value=71.5, threshold=60.0, unit="°C",
                    message=f"{point} {type_}")


def _act(base: str, token: str, incident: str, action: str) -> None:
    http_json("POST", f"{base}/api/v1/incidents/{incident}/{action}", token, {})


def test_statistics_page_from_real_incidents_in_chinese_and_english(
    browser: Browser, base: str, gateway: Gateway,
) -> None:
    now = utc_now()
    raised = [  # (point, type, severity, how long ago the first event was)
        ("gw-lab.boiler", "over_temperature", Severity.CRITICAL, timedelta(minutes=12)),
        ("gw-lab.boiler", "rapid_rise", Severity.MAJOR, timedelta(minutes=2)),
        ("gw-lab.pump", "rapid_rise", Severity.MINOR, timedelta(minutes=1)),
        ("gw-lab.pump", "over_temperature", Severity.MAJOR, timedelta(hours=5)),
        ("gw-lab.door", "door_forced", Severity.MAJOR, timedelta(days=1, hours=2)),
        ("gw-lab.door", "door_held_open", Severity.MINOR, timedelta(days=3)),
    ]
    for point, type_, severity, ago in raised:
        gateway.publish(_incident(gateway, point, type_, severity, now - ago))
    control = login(base)

    def listed() -> dict[tuple[str, str], str] | None:
        rows = http_json("GET", f"{base}/api/v1/incidents?open=false", control)
        return {(r["point"], r["type"]): r["id"] for r in rows} if len(rows) == 6 else None

    ids = wait_until(listed, 30, "six incidents")
    worker, other = login(base, "worker-g01"), login(base, "worker-g02")
    for key, who in ((("gw-lab.boiler", "over_temperature"), worker),
                     (("gw-lab.pump", "over_temperature"), worker),
                     (("gw-lab.pump", "rapid_rise"), worker),
                     (("gw-lab.door", "door_forced"), other)):
        _act(base, who, ids[key], "accept")
        _act(base, who, ids[key], "resolve")

    page = sign_in(browser, base, 1366, 768, "#/stats")
    expect(page.locator("#stats-title")).to_have_text("统计")
    expect(page.locator("#kpi-incidents .kpi-value")).to_have_text("6", timeout=20_000)
    # Accepted: one within 5 minutes, three late (12 minutes, 5 hours, a day after the event).
    expect(page.locator("#kpi-accepted .kpi-note")).to_have_text("1 / 4")
    expect(page.locator("#stats-period")).to_contain_text("北京时间")
    for chart in ("#chart-per-day", "#chart-overdue", "#chart-accept", "#chart-complete",
                  "#chart-busiest"):
        expect(page.locator(f"{chart} canvas")).to_have_count(1)
    grids = page.locator("#stats-grids tbody tr")
    expect(grids).to_have_count(3)
    expect(page.locator("#stats-grids")).to_contain_text("1-3号楼")
    people = page.locator("#stats-people")
    expect(people).to_contain_text("张伟")
    expect(people).to_contain_text("李娜")
    shot(page, "stats-zh-1366.png")

    # The CSV the export link names, fetched with the page's own session.
    page.locator("#export-table").select_option("per_person")
    href = page.locator("#export-csv").get_attribute("href")
    assert href is not None and "table=per_person" in href and "since=" in href
    exported = page.request.get(base + href)
    assert exported.status == 200 and "张伟" in exported.text()

    # A worker accepts the rapid rise: the page re-reads by itself, no reload.
    _act(base, worker, ids[("gw-lab.boiler", "rapid_rise")], "accept")
    expect(page.locator("#kpi-accepted .kpi-note")).to_have_text("2 / 5", timeout=20_000)

    # A range of whole days in the deployment's zone; then a type filter.
    page.locator("#stats-range").select_option("custom")
    day = (now - timedelta(days=3)).astimezone(ZoneInfo("Asia/Shanghai")).date()
    page.locator("#stats-from").fill(day.isoformat())
    page.locator("#stats-apply").click()
    expect(page.locator("#kpi-incidents .kpi-value")).to_have_text("6", timeout=20_000)
    expect(page.locator("#stats-period")).to_contain_text(f"{day.isoformat()} 00:00:00")
    page.locator("#stats-type").select_option("over_temperature")
    expect(page.locator("#kpi-incidents .kpi-value")).to_have_text("2", timeout=20_000)
    page.locator("#stats-type").select_option("")
    page.locator("#stats-grid").select_option("g02")  # 第二网格: the door's two
    expect(page.locator("#kpi-incidents .kpi-value")).to_have_text("2", timeout=20_000)
    expect(page.locator("#stats-grids tbody tr")).to_have_count(1)
    page.locator("#stats-grid").select_option("")
    page.locator("#stats-range").select_option("1d")
    expect(page.locator("#kpi-incidents .kpi-value")).to_have_text("4", timeout=20_000)

    wall = sign_in(browser, base, 1920, 1080, "#/stats?range=7d")
    expect(wall.locator("#kpi-incidents .kpi-value")).to_have_text("6", timeout=20_000)
    to_english(wall)
    expect(wall.locator("#stats-title")).to_have_text("Statistics")
    expect(wall.locator("#stats-period")).to_contain_text("Beijing")
    expect(wall.locator("#stats-grids")).to_contain_text("Mean to accept")
    shot(wall, "stats-en-1920.png")


def _health(gateway: Gateway, cpu: float, pump: str = "timeout") -> Health:
    return Health(
        gateway=GATEWAY, seq=gateway.next_seq(), ts=utc_now(), uptime_s=3600.0,
        cpu_percent=cpu, memory_rss_bytes=33 * 2**20, disk_free_bytes=12 * 10**9,
        drivers={"modbus": DriverHealth(state=DriverState.DEGRADED, detail="1 of 2 silent",
                                        devices={"gw-lab.boiler": "ok", "gw-lab.pump": pump}),
                 "osdp": DriverHealth(state=DriverState.OK, devices={"gw-lab.door": "ok"})},
        counters={"outbox_incident_depth": 0, "outbox_bulk_depth": 17,
                  "outbox_oldest_age_s": 95})


def _readings(now: datetime) -> list[tuple[str, str, float, datetime]]:
    """The boiler every 10 minutes for a day, ending at 41.5 °C; the pump's humidity hourly."""
    boiler = [("gw-lab.boiler", "temperature", 38.0 + 3 * ((i % 36) / 36),
               now - timedelta(minutes=10 * (144 - i))) for i in range(144)]
    boiler.append(("gw-lab.boiler", "temperature", 41.5, now - timedelta(seconds=30)))
    pump = [("gw-lab.pump", "humidity", 55.0 + (i % 5), now - timedelta(hours=24 - i))
            for i in range(24)]
    return boiler + pump


def test_gateways_page_shows_state_health_and_latest_values_live(
    browser: Browser, base: str, gateway: Gateway,
) -> None:
    now = utc_now()
    gateway.publish(Status(gateway=GATEWAY, seq=gateway.next_seq(), ts=now,
                           state=GatewayState.ONLINE, agent_version="1.4.2"))
    gateway.publish(_health(gateway, 3.5))
    readings: list[Any] = _readings(now)
    for first in range(0, len(readings), 100):
        gateway.publish(Telemetry(gateway=GATEWAY, seq=gateway.next_seq(), ts=utc_now(),
                                  readings=[Reading(point=p, metric=m, value=v, unit="°C", ts=ts)
                                            for p, m, v, ts in readings[first:first + 100]]))
    control = login(base)
    wait_until(lambda: (http_json("GET", f"{base}/api/v1/points/sparklines?gateway={GATEWAY}",
                                  control)["series"] or None), 30, "readings in InfluxDB")

    page = sign_in(browser, base, 1366, 768, "#/gateways")
    row = page.locator(f'#gateways-table tr[data-gateway="{GATEWAY}"]')
    expect(row).to_contain_text("在线", timeout=20_000)
    expect(row).to_contain_text("1.4.2")
    expect(row.locator(".col-cpu")).to_have_text("3.5%")
    expect(row.locator(".col-memory")).to_have_text("33.0 MB")
    expect(row.locator(".col-outbox")).to_contain_text("17")
    expect(row).to_contain_text("部分异常")
    expect(row).to_contain_text("gw-lab.pump: timeout")
    expect(page.locator("#gateways-summary")).to_have_text("在线 1 / 共 1")
    boiler = page.locator('#points-table tr[data-point="gw-lab.boiler"]')
    expect(boiler).to_contain_text("1号楼锅炉房")
    expect(boiler.locator(".latest")).to_contain_text("温度 41.5", timeout=20_000)
    expect(boiler.locator(".trend canvas")).to_have_count(1)
    pump = page.locator('#points-table tr[data-point="gw-lab.pump"]')
    expect(pump.locator(".latest")).to_contain_text("湿度")
    expect(page.locator('#points-table tr[data-point="gw-lab.door"]')).to_contain_text("无读数")
    shot(page, "gateways-zh-1366.png")

    # Live: a health message and then the last will change the row without a reload.
    gateway.publish(_health(gateway, 9.25, pump="ok"))
    expect(row.locator(".col-cpu")).to_have_text("9.3%", timeout=20_000)
    expect(row).not_to_contain_text("gw-lab.pump: timeout")
    gateway.publish(Status(gateway=GATEWAY, seq=gateway.next_seq(), ts=utc_now(),
                           state=GatewayState.OFFLINE))
    expect(row).to_contain_text("离线", timeout=20_000)
    expect(page.locator("#gateways-summary")).to_have_text("在线 0 / 共 1")
    shot(page, "gateways-zh-1366-offline.png")

    wall = sign_in(browser, base, 1920, 1080, f"#/gateways/{GATEWAY}")
    to_english(wall)
    expect(wall.locator("#gateways-title")).to_have_text("Gateways and points")
    wall_row = wall.locator(f'#gateways-table tr[data-gateway="{GATEWAY}"]')
    expect(wall_row).to_contain_text("Offline")
    expect(wall.locator('#points-table tr[data-point="gw-lab.boiler"] .latest')).to_contain_text(
        "Temperature 41.5", timeout=20_000)
    shot(wall, "gateways-en-1920.png")
