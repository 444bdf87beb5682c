"""The control room raises a gateway's boiler threshold from the web app and sees the gateway
run it; a broken version rolls back by itself and both show in the gateway's history. Real
Chromium, server, Mosquitto, simulated sensor and agent."""

from __future__ import annotations

import copy
from pathlib import Path

from playwright.sync_api import Browser, expect
from test_remote_config_e2e import GATEWAY, Site
from test_web_page import shot, sign_in

from gridsense_devtools.processes import Procs
from gridsense_devtools.services import InfluxDB, Mosquitto


def test_control_room_raises_a_threshold_and_sees_the_history(
        tmp_path: Path, procs: Procs, mosquitto: Mosquitto, influx: tuple[InfluxDB, str],
        browser: Browser) -> None:
    site = Site(tmp_path, procs, mosquitto, influx)
    site.push(site.document, "现状 / as installed")
    site.outcome(1, "version 1 applied")

    page = browser.new_page(viewport={"width": 1366, "height": 900})
    sign_in(page, site.base, "control")
    page.goto(f"{site.base}/#/config/{GATEWAY}")
    threshold = page.locator("input[name=threshold-0]")
    expect(threshold).to_have_value("60")
    threshold.fill("70")
    page.get_by_label("原因").fill("锅炉房夏季偏热，阈值调到 70 °C")
    page.get_by_role("button", name="下发").click()
    sent = page.locator(".config-sent")
    expect(sent).to_contain_text("v2")  # "being pushed", until the gateway has answered
    expect(sent).to_have_count(0, timeout=60_000)
    status = page.locator(".config-status")
    expect(status).to_contain_text("v2")
    expect(status.get_by_text("已生效")).to_be_visible()
    expect(status.get_by_text("与期望一致")).to_be_visible(timeout=60_000)
    assert site.config()["status"]["running_version"] == 2
    shot(page, "config-applied.png")

    # A broken version (a sensor nobody answers for) rolls back by itself.
    broken = copy.deepcopy(site.config()["document"])
    broken["devices"].append({**broken["devices"][0], "point": "gw-rc.ghost", "slave": 9})
    site.push(broken, "加装 9 号传感器 / add sensor 9")
    expect(status.get_by_text("已回滚")).to_be_visible(timeout=90_000)
    expect(status).to_contain_text("gw-rc.ghost: timeout")
    history = page.locator(".config-history")
    expect(history.get_by_text("加装 9 号传感器 / add sensor 9")).to_be_visible()
    expect(history.get_by_text("锅炉房夏季偏热，阈值调到 70 °C")).to_be_visible()
    assert history.locator("tbody tr").count() == 6  # 3 versions, 3 reports
    shot(page, "config-rolled-back.png")

    # The next change starts from what the gateway runs (version 2), not the failed version.
    page.locator("input[name=threshold-0]").fill("72")
    page.get_by_label("原因").fill("阈值 72 °C")
    page.get_by_role("button", name="下发").click()
    expect(status).to_contain_text("v4", timeout=60_000)
    expect(status.get_by_text("已生效")).to_be_visible(timeout=60_000)
    assert "gw-rc.ghost" not in str(site.config()["document"])
    # Pushing what the gateway is meant to run already makes no version: said, not sent.
    page.locator("input[name=threshold-0]").fill("72")
    page.get_by_label("原因").fill("再下发一次")
    page.get_by_role("button", name="下发").click()
    expect(page.get_by_role("alert")).to_contain_text("与当前版本相同，未创建新版本")
    assert [v["version"] for v in site.history()["versions"]] == [4, 3, 2, 1]
    shot(page, "config-unchanged.png")
    page.close()
