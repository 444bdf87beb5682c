"""The installer's page in a real Chromium (zh-CN), on a phone and on a desktop: pick the
gateway, paste what `gridsense-edge discover --json` printed, assign the device to a point,
save; then the commissioning check, whose report shows the point's first reading from InfluxDB
and the drill page delivered to the installer's open app. Screenshots in
test-artifacts/screenshots/."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from playwright.sync_api import Browser, Page, expect

from gridsense_devtools.processes import Procs
from gridsense_devtools.server_process import launch_server, write_registry_and_config
from gridsense_devtools.services import InfluxDB, Mosquitto
from gridsense_protocol import Kind, Reading, Telemetry, encode, topic_for, utc_now
from gridsense_server.db import make_engine, make_session_factory
from gridsense_server.enrollment import EnrollmentStore

CHROMIUM = "/usr/bin/chromium"
SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
GATEWAY = "gw-09"
INSTALLER = ("  - {username: installer-ly, name: 王安装, role: installer, grids: [g01], "
             "password: demo}\n")
# As `gridsense-edge discover --json` prints it: one Modbus sensor identified on the bus, one
# that answered without saying what it is (its model is the installer's pick), one garbled.
DISCOVERED = {
    "config": {
        "gateway": {"id": GATEWAY, "state_dir": "./state/gw-09"},
        "buses": [{"id": "rs485-0", "port": "/dev/ttyUSB0"}],
        "devices": [{"type": "modbus_temperature", "point": "gw-09.dev1", "bus": "rs485-0",
                     "slave": 1, "profile": "xy-md02"}]},
    "draft": {"pending": [
        {"why": "slave 3 on /dev/ttyUSB0: 未知 — 请选择型号 / unknown — pick a profile",
         "entry": {"type": "modbus_temperature", "point": "gw-09.rs485-0-3", "bus": "rs485-0",
                   "slave": 3, "profile": "pt100-transmitter"},
         "candidates": ["pt100-transmitter"]},
        {"why": "slave 4 on /dev/ttyUSB0: garbled",
         "entry": {"type": "modbus_temperature", "point": "gw-09.rs485-0-4", "bus": "rs485-0",
                   "slave": 4, "profile": "?"}, "candidates": None}]}}

pytestmark = pytest.mark.skipif(shutil.which(CHROMIUM) is None,
                                reason="Debian's chromium is not installed (scripts/test)")


@pytest.fixture
def site(tmp_path: Path, mosquitto: Mosquitto, influx: tuple[InfluxDB, str]
         ) -> Iterator[tuple[str, datetime]]:
    """A server with an installer, gw-09 created for enrollment in 莲园社区, and gw-09 already
    sending readings of its two not yet registered sensors; the base URL and the first
    reading's time."""
    procs = Procs(tmp_path)
    try:
        config, base = write_registry_and_config(tmp_path, mosquitto.port, influx[0].url,
                                                 influx[1], {"gw-01.boiler": ("gw-01", "g01")})
        registry = tmp_path / "registry.yaml"
        registry.write_text(registry.read_text() + INSTALLER, encoding="utf-8")
        launch_server(procs, config, base)
        engine = make_engine(f"sqlite:///{tmp_path / 'server.db'}")
        try:
            with make_session_factory(engine).begin() as session:
                EnrollmentStore(make_session_factory(engine), 3600).create(
                    session, GATEWAY, "ly", "9号楼网关", "9号楼 B1", "control")
        finally:
            engine.dispose()
        first = datetime.now(UTC).replace(microsecond=0)  # after it was created
        _publish(mosquitto, first)
        yield base, first
    finally:
        procs.stop_all()


def _publish(mosquitto: Mosquitto, first: datetime) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=GATEWAY)
    client.connect("127.0.0.1", mosquitto.port)
    client.loop_start()
    try:
        message = Telemetry(gateway=GATEWAY, seq=1, ts=utc_now(), readings=[
            Reading(point=point, metric="temperature", value=base + n, unit="°C",
                    ts=first + timedelta(seconds=10 * n))
            for point, base in (("gw-09.dev1", 23.5), ("gw-09.rs485-0-3", 31.0))
            for n in range(3)])
        client.publish(topic_for(GATEWAY, Kind.TELEMETRY), encode(message),
                       qos=1).wait_for_publish(10)
    finally:
        client.loop_stop()
        client.disconnect()


def _shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / name), full_page=True)


def _sign_in(page: Page, base: str) -> None:
    page.goto(base + "/#/install")
    page.get_by_label("用户名").fill("installer-ly")
    page.get_by_label("密码").fill("demo")
    page.get_by_role("button", name="登录", exact=True).click()
    expect(page.locator("#install")).to_be_visible()


def test_an_installer_assigns_a_device_and_commissions_on_a_phone(
    browser: Browser, site: tuple[str, datetime],
) -> None:
    base, first = site
    phone = browser.new_page(viewport={"width": 390, "height": 844}, locale="zh-CN",
                             timezone_id="Asia/Shanghai")
    _sign_in(phone, base)
    phone.get_by_label("选择网关").select_option(GATEWAY)
    expect(phone.locator("#no-devices")).to_be_visible()
    phone.get_by_label("discover --json 输出").fill(json.dumps(DISCOVERED))
    phone.get_by_role("button", name="读取设备").click()
    devices = phone.locator("#install-devices li")
    expect(devices).to_have_count(2)  # the garbled answer is not offered as a sensor
    device = devices.first
    expect(device).to_contain_text("modbus_temperature")
    expect(device).to_contain_text("xy-md02")
    expect(phone.locator("#device-0-threshold")).to_have_value("60")  # the model's proposal
    expect(phone.locator("#device-0-id")).to_have_value("gw-09.dev1")
    phone.locator("#device-0-name").fill("9号楼锅炉房")
    phone.locator("#device-0-grid").select_option("g01")
    phone.locator("#device-0-location").fill("9号楼 B1")
    # The unidentified sensor: not assigned until the installer confirms its model.
    unknown = devices.nth(1)
    expect(unknown).to_contain_text("未知")
    expect(phone.locator("#device-1-assign")).not_to_be_checked()
    phone.locator("#device-1-assign").check()
    expect(phone.locator("#device-1-profile")).to_have_value("pt100-transmitter")  # best fit
    expect(phone.locator("#device-1-threshold")).to_have_value("90")  # that model's proposal
    phone.locator("#device-1-profile").select_option("xy-md02")
    expect(phone.locator("#device-1-threshold")).to_have_value("60")
    phone.locator("#device-1-name").fill("9号楼水泵房")
    phone.locator("#device-1-grid").select_option("g01")
    _shot(phone, "install-phone-assign.png")
    phone.get_by_role("button", name="保存配置").click()
    saved = phone.locator("#install-saved")
    expect(saved).to_contain_text("已保存：2 个测点已登记")
    # A draft without the gateway's connection is kept, not pushed, and the page says why.
    expect(saved).to_contain_text("未下发到网关：草稿没有 mqtt 部分")
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

    phone.get_by_role("button", name="开始调试检查").click()
    point = phone.locator('#commission-points li[data-point="gw-09.dev1"]')
    expect(point).to_contain_text("9号楼锅炉房", timeout=30_000)
    expect(point).to_contain_text("首条读数：温度 23.5", timeout=30_000)
    shanghai = (first + timedelta(hours=8)).strftime("%H:%M:%S")
    expect(point).to_contain_text(shanghai)
    # The page is open: the drill reached the installer's app, and the check is green.
    expect(phone.locator("#commission-verdict")).to_have_text("合格", timeout=30_000)
    expect(phone.locator("#commission-drill")).to_have_text("已送达")
    phone.get_by_role("button", name="我已收到演练通知").click()
    expect(phone.locator("#commission-drill")).to_have_text("已确认收到")
    _shot(phone, "install-phone-report.png")

    desktop = browser.new_page(viewport={"width": 1366, "height": 768}, locale="zh-CN",
                               timezone_id="Asia/Shanghai")
    _sign_in(desktop, base)
    desktop.goto(base + f"/#/install/{GATEWAY}")
    expect(desktop.locator("#device-0-name")).to_have_value("9号楼锅炉房")  # as saved
    expect(desktop.locator("#device-1-name")).to_have_value("9号楼水泵房")
    # Saved with the model the installer chose: a device of the configuration like any other.
    expect(desktop.locator("#install-devices li").nth(1)).to_contain_text("xy-md02")
    expect(desktop.locator("#device-1-profile")).to_have_count(0)
    expect(desktop.locator("#commission-verdict")).to_have_text("合格")
    expect(desktop.locator("#commission-points")).to_contain_text("23.5")
    _shot(desktop, "install-desktop.png")
