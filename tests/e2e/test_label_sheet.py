"""The print sheet of check-in labels in a real Chromium: it renders under the server's CSP
with Chinese names, and every QR code on the screenshot decodes (OpenCV's detector, as a
phone camera would) to the point's current label."""

from __future__ import annotations

import json
import shutil
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest
from playwright.sync_api import Browser, Locator

from gridsense_devtools.http import login
from gridsense_devtools.processes import Procs, wait_until
from gridsense_devtools.server_process import launch_server, write_registry_and_config
from gridsense_devtools.services import InfluxDB, Mosquitto

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
POINTS = {"gw-lbl.boiler": ("gw-lbl", "g01-a"), "gw-lbl.pump": ("gw-lbl", "g01-a"),
          "gw-lbl.gate": ("gw-lbl", "g02-a")}
NAMES = {"gw-lbl.boiler": "1号楼锅炉房", "gw-lbl.pump": "地下水泵房", "gw-lbl.gate": "8号楼门禁"}

pytestmark = pytest.mark.skipif(shutil.which(CHROMIUM) is None,
                                reason="Debian's chromium is not installed")


def _get(base: str, path: str, token: str) -> dict[str, str]:
    request = urllib.request.Request(base + path, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=30) as reply:
        return dict(json.loads(reply.read()))


def test_label_sheet_prints_scannable_labels(
        tmp_path: Path, procs: Procs, mosquitto: Mosquitto, influx: tuple[InfluxDB, str],
        browser: Browser) -> None:
    config, base = write_registry_and_config(tmp_path, mosquitto.port, influx[0].url, influx[1],
                                             POINTS)
    registry = tmp_path / "registry.yaml"
    text = registry.read_text(encoding="utf-8")
    for point, name in NAMES.items():
        text = text.replace(f"name: {point},", f"name: {name},")
    registry.write_text(text, encoding="utf-8")
    launch_server(procs, config, base)
    token = login(base, "control", "demo")
    labels = {p: _get(base, f"/api/v1/points/{p}/label", token) for p in ("gw-lbl.boiler",
                                                                          "gw-lbl.pump")}

    context = browser.new_context(locale="zh-CN", viewport={"width": 794, "height": 1123},
                                  device_scale_factor=2,
                                  extra_http_headers={"Authorization": f"Bearer {token}"})
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text)
            if m.type == "error" and "Failed to load resource" not in m.text else None)
    # Every resource the sheet needs loads (the browser's own favicon probe aside).
    page.on("response", lambda r: problems.append(f"{r.status} {r.url}")
            if r.status >= 400 and not r.url.endswith("/favicon.ico") else None)
    page.goto(f"{base}/labels/sheet?grid=g01")
    assert page.title() == "点位签到标签 / Check-in labels"
    assert page.locator("section.label").count() == 2  # g02's gate is not on g01's sheet
    assert page.locator(".name").all_inner_texts() == ["1号楼锅炉房", "地下水泵房"]
    assert page.locator(".code").all_inner_texts() == [labels["gw-lbl.boiler"]["code"],
                                                        labels["gw-lbl.pump"]["code"]]
    # The stylesheet applied (no inline style under the CSP): the QR is 38 mm wide.
    width = page.locator("svg.qr").first.evaluate("e => e.getBoundingClientRect().width")
    assert 140 < width < 150, width
    assert problems == []
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "label_sheet.png"), full_page=True)
    # Each printed code, as a camera held over it sees it, decodes to that point's label.
    # (Looked at again until it reads, as a camera would: under load the first shot can be
    # taken before the code is painted.)
    def read(code: Locator) -> str:
        picture = cv2.imdecode(np.frombuffer(code.screenshot(), np.uint8), cv2.IMREAD_COLOR)
        return str(cv2.QRCodeDetector().detectAndDecode(picture)[0])

    decoded = [wait_until(lambda code=code: read(code), 15, "a printed QR code read")
               for code in page.locator("svg.qr").all()]
    context.close()
    assert decoded == [labels["gw-lbl.boiler"]["qr"], labels["gw-lbl.pump"]["qr"]]
