"""The screens in docs/operations.md, taken from the running demo: the demo is started, left to
raise its incidents, and each screen is opened in Debian's Chromium as its user would.

    .venv/bin/python scripts/screens.py [--out docs/screens] [--wait 90]

Writes one PNG per screen (Chinese first; the wall screen also in English) and prints their
names. Not a test: tests/e2e checks the same screens' behaviour.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from playwright.sync_api import Browser, Page, expect, sync_playwright

from gridsense_devtools.ports import free_port
from gridsense_devtools.processes import env_without_proxies

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
LAPTOP = {"width": 1366, "height": 768}
WALL = {"width": 1920, "height": 1080}
PHONE = {"width": 390, "height": 844}


def start_demo(work: Path) -> tuple[subprocess.Popen[str], str]:
    https_port = free_port()
    demo = subprocess.Popen(
        [sys.executable, str(REPO / "scripts" / "demo.py"), "--dir", str(work / "demo"),
         "--ca-dir", str(work / "ca"), "--https-port", str(https_port),
         "--http-port", str(free_port()), "--influx-port", str(free_port())],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env_without_proxies())
    assert demo.stdout is not None
    for line in demo.stdout:
        print(line, end="", file=sys.stderr)
        if "gridsense demo is running" in line:
            return demo, f"https://localhost:{https_port}"
    raise RuntimeError("the demo stopped before it was running")


def sign_in(page: Page, base: str, username: str, route: str = "#/board") -> None:
    page.goto(f"{base}/{route}")
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill("demo")
    page.get_by_role("button", name="登录", exact=True).click()
    expect(page.locator("#live")).to_be_visible(timeout=20_000)


def shot(page: Page, out: Path, name: str, settle_s: float = 2.0) -> None:
    time.sleep(settle_s)  # charts animate in, live counts arrive
    page.screenshot(path=str(out / f"{name}.png"))
    print(out / f"{name}.png")


def screens(browser: Browser, base: str, out: Path) -> None:
    def page_for(viewport: dict[str, int], user: str, route: str = "#/board") -> Page:
        context = browser.new_context(viewport=viewport, ignore_https_errors=True,
                                      locale="zh-CN", timezone_id="Asia/Shanghai")
        page = context.new_page()
        sign_in(page, base, user, route)
        return page

    board = page_for(LAPTOP, "control")
    shot(board, out, "board-1366-zh")
    board.locator(".incidents tbody tr").first.click()
    shot(board, out, "incident-1366-zh", 3.0)
    for route, name in (("#/plan", "plan-1366-zh"), ("#/stats", "stats-1366-zh"),
                        ("#/gateways", "gateways-1366-zh")):
        board.goto(f"{base}/{route}")
        shot(board, out, name, 3.0)
    wall = page_for(WALL, "control")
    wall.get_by_role("button", name="English").click()
    shot(wall, out, "board-1920-en")
    phone = page_for(PHONE, "worker-g01", "#/m")
    shot(phone, out, "phone-tasks-zh")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screens")
    parser.add_argument("--wait", type=float, default=90.0,
                        help="seconds the demo runs before the first screen (its incidents)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="gridsense-screens-") as folder:
        demo, base = start_demo(Path(folder))
        # The demo goes on printing: keep its pipe drained so it never blocks on a full pipe.
        threading.Thread(target=_echo, args=(demo,), daemon=True).start()
        try:
            time.sleep(args.wait)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=[
                    "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
                try:
                    screens(browser, base, args.out)
                finally:
                    browser.close()
        finally:
            demo.send_signal(signal.SIGINT)
            try:
                demo.wait(60)
            except subprocess.TimeoutExpired:
                demo.kill()
    return 0


def _echo(demo: subprocess.Popen[str]) -> None:
    assert demo.stdout is not None
    for line in demo.stdout:
        print(line, end="", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
