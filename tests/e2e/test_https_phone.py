"""A phone-sized Chromium opens the server over HTTPS by a name other than localhost, trusting
the deployment CA the way a phone would (the CA installed in the browser's certificate store, an
NSS database in a temporary HOME — no ignored certificate errors), signs in through the page's
own form and gets a secure context (camera, service worker); the security headers are there and
the page's Content-Security-Policy reports no violation. All traffic stays on loopback: Chromium
maps the test name to 127.0.0.1."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Error, Page, expect, sync_playwright

from gridsense_devtools.http import trust_ca
from gridsense_devtools.ports import free_port
from gridsense_devtools.processes import Procs, spawn, stop_process, wait_until
from gridsense_devtools.server_process import launch_server, write_registry_and_config
from gridsense_devtools.services import InfluxDB, Mosquitto
from gridsense_server.api.hardening import CSP
from gridsense_server.pki import DeploymentCA

CHROMIUM = "/usr/bin/chromium"
CERTUTIL = shutil.which("certutil")
NAME = "gridsense.test"  # never resolved by DNS: Chromium maps it to 127.0.0.1
PHONE = {"width": 390, "height": 844}
# Runs before the page's own script: every CSP violation the page causes is kept.
WATCH_CSP = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation",
    (e) => window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`));
"""

pytestmark = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None or CERTUTIL is None,
    reason="needs Debian's chromium and certutil (libnss3-tools; scripts/test installs both)",
)


def _nss_home(home: Path, ca_file: Path) -> Path:
    """A HOME whose NSS database (what Chromium on Linux trusts) holds the deployment CA."""
    nssdb = home / ".pki" / "nssdb"
    nssdb.mkdir(parents=True)
    assert CERTUTIL is not None
    subprocess.run([CERTUTIL, "-d", f"sql:{nssdb}", "-N", "--empty-password"], check=True)
    subprocess.run([CERTUTIL, "-d", f"sql:{nssdb}", "-A", "-t", "C,,", "-n", "gridsense test CA",
                    "-i", str(ca_file)], check=True)
    return home


@contextlib.contextmanager
def _chromium(home: Path) -> Iterator[Browser]:
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  f"--host-resolver-rules=MAP {NAME} 127.0.0.1"],
            env={**os.environ, "HOME": str(home)},
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def https_server(tmp_path: Path, mosquitto: Mosquitto,
                 influx: tuple[InfluxDB, str]) -> Iterator[tuple[str, Path]]:
    """The demo's arrangement: the server issues its certificate from the deployment CA on
    first start. Yields the page's URL (by the test name) and the CA certificate."""
    ca, _ = DeploymentCA.init(tmp_path / "ca", common_name="gridsense test CA")
    trust_ca(ca.cert_file)  # the harness's own health checks verify the certificate too
    procs = Procs(tmp_path)
    try:
        config, base = write_registry_and_config(
            tmp_path, mosquitto.port, influx[0].url, influx[1],
            {"gw-web.boiler": ("gw-web", "g01-a")},
            http_tls=f"{{ca_dir: {tmp_path / 'ca'}, names: [{NAME}, 127.0.0.1]}}")
        port = base.rsplit(":", 1)[1]
        url = f"https://{NAME}:{port}"
        config.write_text(config.read_text() + f"lifecycle: {{public_url: '{url}'}}\n")
        launch_server(procs, config, base)
        yield url, ca.cert_file
    finally:
        procs.stop_all()


def _open_and_sign_in(page: Page, url: str) -> Any:
    page.add_init_script(WATCH_CSP)
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    response = page.goto(url + "/")
    assert response is not None and response.ok
    page.get_by_label("用户名").fill("worker-g01")
    page.get_by_label("密码").fill("demo")
    page.get_by_role("button", name="登录", exact=True).click()
    # The board, or on a phone (a worker) the phone page (#/m).
    expect(page.locator("#board, .phone").first).to_be_visible()
    expect(page.locator("#live")).to_be_visible()  # the wss: stream is open under the CSP
    assert page.evaluate("window.__cspViolations") == []
    assert not [line for line in console if "Content Security Policy" in line], console
    return response


def test_a_phone_trusting_the_ca_signs_in_over_https_in_a_secure_context(
        https_server: tuple[str, Path], tmp_path: Path) -> None:
    url, ca_file = https_server
    shots = Path(os.environ.get("GRIDSENSE_SCREENSHOTS", "test-artifacts/screenshots"))
    shots.mkdir(parents=True, exist_ok=True)
    with _chromium(_nss_home(tmp_path / "home", ca_file)) as browser:
        phone = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True,
                                    has_touch=True).new_page()
        response = _open_and_sign_in(phone, url)
        headers = response.all_headers()
        assert headers["content-security-policy"] == CSP
        assert headers["strict-transport-security"].startswith("max-age=")
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "no-referrer"
        assert "camera=(self)" in headers["permissions-policy"]
        assert phone.evaluate("window.isSecureContext") is True
        assert phone.evaluate("location.origin") == url
        # A secure context is what the camera and the service worker need.
        assert phone.evaluate("typeof navigator.mediaDevices?.getUserMedia") == "function"
        assert phone.evaluate("'serviceWorker' in navigator") is True
        phone.screenshot(path=str(shots / "phone-https.png"), full_page=True)

        desktop = browser.new_page(viewport={"width": 1280, "height": 800})
        _open_and_sign_in(desktop, url)
        assert desktop.evaluate("window.isSecureContext") is True
        desktop.screenshot(path=str(shots / "desktop-https.png"), full_page=True)


def test_without_the_ca_the_browser_refuses_the_page(
        https_server: tuple[str, Path], tmp_path: Path) -> None:
    url, _ = https_server
    home = tmp_path / "untrusting-home"
    home.mkdir()
    with _chromium(home) as browser:
        page = browser.new_page(viewport=PHONE)
        with pytest.raises(Error, match="ERR_CERT_AUTHORITY_INVALID"):
            page.goto(url + "/")


def test_the_demo_itself_opens_on_a_phone_that_trusts_its_ca(
        tmp_path: Path, repo_root: Path) -> None:
    """The README's demo command, as an installer shows it on a phone: by a name other than
    localhost, over HTTPS, with the demo's own CA installed on the phone."""
    https_port, http_port = free_port(), free_port()
    log = tmp_path / "demo.log"
    demo = spawn([sys.executable, str(repo_root / "scripts" / "demo.py"), "--dir",
                  str(tmp_path / "demo"), "--duration", "300", "--name", NAME,
                  "--https-port", str(https_port), "--http-port", str(http_port),
                  "--influx-port", str(free_port())], log)
    try:
        wait_until(lambda: "GRIDSENSE_URL=" in log.read_text(errors="replace")
                   or demo.poll() is not None, 240, "the demo's banner")
        output = log.read_text(errors="replace")
        assert demo.poll() is None, output
        url = f"https://{NAME}:{https_port}"
        assert f"GRIDSENSE_URL={url}" in output, output
        # Where the phone gets the CA to install: the demo's plain port, by the same name.
        assert f"http://{NAME}:{http_port}/ca.crt" in output, output
        ca_file = tmp_path / "demo-ca" / "ca.crt"
        with _chromium(_nss_home(tmp_path / "home", ca_file)) as browser:
            phone = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True,
                                        has_touch=True).new_page()
            _open_and_sign_in(phone, url)
            assert phone.evaluate("window.isSecureContext") is True
            assert phone.evaluate("location.origin") == url
    finally:
        stop_process(demo)
