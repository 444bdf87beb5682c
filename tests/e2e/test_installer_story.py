"""The installer's story end to end, every part real (Mosquitto with dynamic security and a TLS
listener, InfluxDB, the server process, a simulated Modbus sensor on a pty, the `gridsense-edge`
commands as an installer types them): a new gateway enrolls with a code, its agent runs with no
devices, `discover --config` finds the sensor through the running agent, the draft goes to the
installer API with the sensor assigned to a new point, the server pushes it as remote version 1,
the agent applies it, the point's readings reach InfluxDB and the commissioning run ends green
with the point's first reading — no file edited by hand."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import yaml
from test_enrollment import Site, enroll_cli
from test_enrollment import site as enrolled  # noqa: F401 (its fixture, by this name here)

from gridsense_devtools.http import http_json, login
from gridsense_devtools.processes import BIN, env_without_proxies
from gridsense_edge.configtypes import default_profiles_dir

GATEWAY = "gw-04"
POINT = f"{GATEWAY}.boiler-4"
PROFILE = "vendor-th40"
SCENARIO = f"""
sensors:
  - slave: 1
    profile: {PROFILE}
    values: {{temperature: 22.0, humidity: 40.0}}
"""


def vendor_profiles(folder: Path) -> Path:
    """The sensor vendor's profile folder: a temperature/humidity model that keeps its model
    code in holding register 0x0100, so discovery can say what it is."""
    profile = yaml.safe_load((default_profiles_dir() / "xy-md02.yaml").read_text())
    profile.update(id=PROFILE, name="TH-40 (model code in holding 0x0100)",
                   identify=[{"table": "holding", "address": 0x0100, "equals": 0x5A40}])
    folder.mkdir(parents=True)
    (folder / f"{PROFILE}.yaml").write_text(yaml.safe_dump(profile))
    return folder


def discover(site: Site, config: Path, link: Path, profiles: Path) -> dict[str, Any]:
    """`gridsense-edge discover` as the installer runs it beside the running agent, with the
    sensor vendor's profile folder (a model that says what it is)."""
    done = subprocess.run(
        [str(BIN / "gridsense-edge"), "discover", "--config", str(config), "--modbus",
         str(link), "--profiles-dir", str(profiles), "--ids", "1-3",
         "--out", str(site.tmp / "discovery"), "--json"],
        capture_output=True, text=True, timeout=120, env=env_without_proxies(), check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    found: dict[str, Any] = json.loads(done.stdout)
    return found


def test_a_new_gateway_joins_through_enroll_discover_and_the_installer_page(
        enrolled: Site) -> None:  # noqa: F811 (the fixture imported above)
    site = enrolled
    # 1. The control room creates the gateway and its code; the installer enrolls with it.
    created = site.create(GATEWAY)
    state = site.tmp / "edge-state"
    code, answer = enroll_cli(site, created["code"], state)
    assert code == 0, answer
    config = state / "gateway.yaml"
    site.procs.start("edge", "gridsense-edge", "run", "--config", str(config))
    link = site.tmp / "ttyRS485"
    profiles = vendor_profiles(site.tmp / "vendor")
    (site.tmp / "scenario.yaml").write_text(SCENARIO)
    site.procs.start("simulator", "gridsense-edge", "simulate", "modbus", "--scenario",
                     str(site.tmp / "scenario.yaml"), "--link", str(link), "--profiles-dir",
                     str(profiles))
    site.procs.wait_until(link.exists, 30, "the simulator's pty link")

    # 2. Discovery through the running agent finds the sensor; the page's body assigns it.
    result = discover(site, config, link, profiles)
    [scan] = result["modbus"]
    assert [(f["slave"], f["profile"]) for f in scan["found"]] == [(1, PROFILE)], scan
    drafted = result["config"]
    assert "mqtt" in drafted and [d["slave"] for d in drafted["devices"]] == [1]
    installer = login(site.base, "installer-1")
    body = {"config": drafted, "points": [
        {"device": 0, "id": POINT, "name": "4号锅炉", "grid": "g01", "location": "4号楼 B1",
         "thresholds": {"temperature": 60}}]}
    saved = http_json("PUT", f"{site.base}/api/v1/gateways/{GATEWAY}/installation", installer,
                      body)
    assert saved["registry"]["point.created"] == 1, saved
    assert saved["pushed"] == {"version": 1, "reason": None}, saved

    # 3. The gateway applies version 1 and the new point's readings reach InfluxDB.
    def applied() -> dict[str, Any] | None:
        status: dict[str, Any] = site.api("GET", f"/api/v1/gateways/{GATEWAY}/config")["status"]
        return status if status["last_version"] == 1 else None

    status = site.procs.wait_until(applied, 90, "the gateway's report on version 1")
    assert status["last_state"] == "applied" and status["in_sync"] is True, status
    site.procs.wait_until(lambda: site.influx.points(
        f"SELECT * FROM temperature WHERE point = '{POINT}'", site.database), 60,
        "the new point's readings in InfluxDB")

    # 4. Commissioning: the drill pages the installer, whose phone acknowledges it.
    run = http_json("POST", f"{site.base}/api/v1/gateways/{GATEWAY}/commissioning", installer,
                    {})
    http_json("POST", f"{site.base}/api/v1/commissioning/{run['id']}/ack", installer, {})

    def settled() -> dict[str, Any] | None:
        report: dict[str, Any] = http_json(
            "GET", f"{site.base}/api/v1/commissioning/{run['id']}", installer)
        return report if report["verdict"] != "pending" else None

    report = site.procs.wait_until(settled, 60, "the commissioning verdict")
    assert report["verdict"] == "green", report
    assert report["drill"]["outcome"] == "acknowledged", report["drill"]
    [point] = report["points"]
    assert point["point"] == POINT and point["name"] == "4号锅炉" and point["ok"], point
    assert {r["metric"] for r in point["first"]} >= {"temperature"}, point
    assert [r["value"] for r in point["first"] if r["metric"] == "temperature"] == [22.0]
