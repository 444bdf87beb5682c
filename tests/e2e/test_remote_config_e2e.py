"""Remote configuration end to end, every part a real process (Mosquitto, the server, a
simulated Modbus sensor on a pty, the edge agent): a good version applies and the gateway
reports its hash; a version naming a device that never answers rolls back by itself and is not
tried again when the gateway reconnects; a version moving to a broker that does not answer
rolls back without leaving the running broker; the server refuses an invalid version before
anything is sent; a version pushed while the gateway is away applies when it is back."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import urllib.error
from pathlib import Path
from typing import Any

import pytest
import yaml

from gridsense_devtools.http import http_json, login
from gridsense_devtools.ports import free_port
from gridsense_devtools.processes import Proc, Procs, wait_until
from gridsense_devtools.server_process import start_server
from gridsense_devtools.services import InfluxDB, Mosquitto
from gridsense_protocol.gateway_config import config_hash

GATEWAY = "gw-rc"
POINTS = {"gw-rc.boiler": (GATEWAY, "g01-a")}
SCENARIO = """
sensors:
  - slave: 1
    profile: xy-md02
    values: {temperature: 22.0, humidity: 40.0}
"""


def gateway_document(link: Path, mqtt_port: int, state: Path) -> dict[str, Any]:
    return {
        "gateway": {"id": GATEWAY, "state_dir": str(state)},
        "mqtt": {"host": "127.0.0.1", "port": mqtt_port, "keepalive_s": 10},
        "health": {"interval_s": 2},
        "remote": {"health_window_s": 8},
        "buses": [{"id": "rs485-0", "port": str(link), "timeout_s": 0.3}],
        "devices": [{"type": "modbus_temperature", "point": "gw-rc.boiler", "bus": "rs485-0",
                     "slave": 1, "profile": "xy-md02", "poll_interval_s": 0.5,
                     "refresh_interval_s": 2}],
        "rules": [{"type": "over_temperature", "points": ["*"], "threshold": 60,
                   "hysteresis": 2, "min_duration_s": 1, "severity": "major"}],
    }


class Site:
    """The processes of one test and the calls it makes to them."""

    def __init__(self, tmp: Path, procs: Procs, mosquitto: Mosquitto,
                 influx: tuple[InfluxDB, str]) -> None:
        self.tmp, self.procs = tmp, procs
        (tmp / "scenario.yaml").write_text(SCENARIO)
        self.link = tmp / "ttyRS485"
        self.document = gateway_document(self.link, mosquitto.port, tmp / "edge-state")
        self.file = tmp / "gateway.yaml"
        self.file.write_text(yaml.safe_dump(self.document))
        _server, self.base, self.server_config = start_server(
            procs, tmp, mosquitto.port, influx[0].url, influx[1], POINTS)
        self.token = login(self.base, "control")
        procs.start("simulator", "gridsense-edge", "simulate", "modbus", "--scenario",
                    str(tmp / "scenario.yaml"), "--link", str(self.link))
        wait_until(self.link.exists, 30, "the simulator's pty link")
        self.agent = self.start_agent()

    def start_agent(self) -> Proc:
        self.agent = self.procs.start("edge", "gridsense-edge", "run", "--config",
                                      str(self.file))
        return self.agent

    def stop_agent(self) -> None:
        """The gateway goes away (and its MQTT session with it, until it is back)."""
        self.agent.stop()
        self.procs.started.remove(self.agent)

    def push(self, document: dict[str, Any], reason: str) -> dict[str, Any]:
        answer: dict[str, Any] = http_json(
            "POST", f"{self.base}/api/v1/gateways/{GATEWAY}/config", self.token,
            {"document": document, "reason": reason})
        return answer

    def config(self) -> dict[str, Any]:
        got: dict[str, Any] = http_json("GET", f"{self.base}/api/v1/gateways/{GATEWAY}/config",
                                        self.token)
        return got

    def history(self) -> dict[str, Any]:
        got: dict[str, Any] = http_json(
            "GET", f"{self.base}/api/v1/gateways/{GATEWAY}/config/history", self.token)
        return got

    def outcome(self, version: int, what: str) -> dict[str, Any]:
        """The gateway's report on ``version`` (waits for it)."""
        def reported() -> dict[str, Any] | None:
            status = self.config()["status"]
            return status if status["last_version"] == version else None
        try:
            found: dict[str, Any] = self.procs.wait_until(reported, 90, what)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.procs.logs()}") from None
        return found


def with_threshold(document: dict[str, Any], threshold: float) -> dict[str, Any]:
    changed = copy.deepcopy(document)
    changed["rules"][0]["threshold"] = threshold
    return changed


@pytest.fixture
def site(tmp_path: Path, procs: Procs, mosquitto: Mosquitto,
         influx: tuple[InfluxDB, str]) -> Site:
    return Site(tmp_path, procs, mosquitto, influx)


def test_good_version_applies_and_a_failing_one_rolls_back_and_is_not_retried(
        site: Site) -> None:
    raised = with_threshold(site.document, 70)
    v1 = site.push(raised, "锅炉阈值调到 70 °C / boiler threshold to 70")
    assert v1["version"] == 1 and v1["hash"] == config_hash(raised)
    status = site.outcome(1, "the gateway's report on version 1")
    assert status["last_state"] == "applied", status
    assert status["running_hash"] == v1["hash"] == status["desired_hash"]
    assert status["in_sync"] is True
    kept = json.loads((site.tmp / "edge-state/remote_config/good.json").read_text())
    assert kept["document"]["rules"][0]["threshold"] == 70

    # A sensor at an address nobody answers on: the window ends unhealthy, the gateway rolls
    # back to version 1 by itself and says why.
    broken = copy.deepcopy(raised)
    broken["devices"].append({**raised["devices"][0], "point": "gw-rc.ghost", "slave": 9})
    v2 = site.push(broken, "加一个不存在的传感器 / a sensor that is not there")
    status = site.outcome(2, "the gateway's report on version 2")
    assert status["last_state"] == "rolled_back", status
    assert "gw-rc.ghost: timeout" in status["last_reason"], status
    assert status["running_hash"] == v1["hash"] != v2["hash"]
    assert status["in_sync"] is False
    # The control room's gateways view says the same: desired 2, running 1, rolled back.
    [listed] = [g for g in http_json("GET", f"{site.base}/api/v1/gateways", site.token)
                if g["id"] == GATEWAY]
    remote = listed["remote_config"]
    assert (remote["desired_version"], remote["running_version"], remote["in_sync"],
            remote["last_state"]) == (2, 1, False, "rolled_back"), remote

    # Reconnect (a restart): the retained config hands version 2 over again; it is skipped.
    site.stop_agent()
    before = len(site.agent.log())  # the restarted agent appends to the same log
    agent = site.start_agent()
    site.procs.wait_until(lambda: "remote_config_skipped" in agent.log()[before:], 60,
                          "the restarted agent skipping version 2")
    assert "remote_config_applying" not in agent.log()[before:], agent.log()[before:]
    applies = site.history()["applies"]
    assert [(a["version"], a["state"]) for a in applies] == [(2, "rolled_back"), (1, "applied")]

    # A newer version is applied again, by the restarted agent (running version 1 from disk).
    v3 = site.push(with_threshold(site.document, 65), "回到 65 °C / back to 65")
    status = site.outcome(3, "the gateway's report on version 3")
    assert status["last_state"] == "applied" and status["running_hash"] == v3["hash"], status
    versions = site.history()["versions"]
    assert [v["version"] for v in versions] == [3, 2, 1]
    assert versions[1]["author"] == "control" and "不存在" in versions[1]["reason"]
    diff = http_json("GET", f"{site.base}/api/v1/gateways/{GATEWAY}/config/diff?old=1&new=3",
                     site.token)
    assert "-  threshold: 70" in diff and "+  threshold: 65" in diff, diff


def test_server_refuses_an_invalid_version_before_sending_it(site: Site) -> None:
    bad = with_threshold(site.document, 70)
    bad["rules"][0]["threshold"] = "hot"
    bad["mqtt"]["port"] = 70000
    with pytest.raises(urllib.error.HTTPError) as refused:
        site.push(bad, "typo")
    assert refused.value.code == 422
    detail = json.loads(refused.value.read())["detail"]
    assert detail["code"] == "config_invalid"
    assert any(p.startswith("rules[0].threshold:") for p in detail["problems"]), detail
    assert any(p.startswith("mqtt.port:") for p in detail["problems"]), detail
    assert site.config()["document"] is None
    assert site.config()["status"]["desired_version"] is None
    # The CLI refuses the same way (exit 2), naming the key.
    (site.tmp / "bad.yaml").write_text(yaml.safe_dump(bad))
    cli = subprocess.run(
        [str(Path(sys.executable).parent / "gridsense-server"), "config", "set", GATEWAY,
         "--config", str(site.server_config), "--file", str(site.tmp / "bad.yaml"),
         "--reason", "typo"],
        capture_output=True, text=True, timeout=60, check=False)
    assert cli.returncode == 2, cli.stderr
    assert "rules[0].threshold" in cli.stderr and "配置被拒绝" in cli.stderr
    assert site.history() == {"versions": [], "applies": []}


def test_a_broker_that_does_not_answer_rolls_back_on_the_running_broker(site: Site) -> None:
    moved = copy.deepcopy(site.document)
    moved["mqtt"]["port"] = free_port()  # nothing listens there
    site.push(moved, "迁移到新的 broker / move to a new broker")
    status = site.outcome(1, "the gateway's report on the broker move")
    assert status["last_state"] == "rolled_back", status
    assert "new broker" in status["last_reason"], status
    # Still on the old broker, outbox and all: the next version arrives and applies — one
    # that changes the connection on the same broker (a new session, the outbox carried over).
    reconnect = with_threshold(site.document, 75)
    reconnect["mqtt"]["keepalive_s"] = 15
    v2 = site.push(reconnect, "阈值 75，心跳 15 秒 / threshold 75, keepalive 15 s")
    status = site.outcome(2, "the gateway's report on version 2")
    assert status["last_state"] == "applied" and status["running_hash"] == v2["hash"], status
    # The new connection, once; the report above came through it, out of the same outbox.
    log = site.agent.log()
    assert log.count("event=uplink_started") == 2, log[-3000:]


def test_a_version_pushed_while_the_gateway_is_away_applies_when_it_is_back(
        site: Site) -> None:
    site.procs.wait_until(lambda: "agent_started" in site.agent.log(), 30, "the agent")
    site.stop_agent()
    pushed = site.push(with_threshold(site.document, 68), "离线时下发 / pushed while away")
    site.procs.wait_until(lambda: site.config()["status"]["pushed_version"] == 1, 30,
                          "the server publishing version 1")
    site.start_agent()
    status = site.outcome(1, "the returning gateway's report")
    assert status["last_state"] == "applied" and status["running_hash"] == pushed["hash"]


def test_a_version_too_large_for_one_message_travels_in_parts(site: Site) -> None:
    large = with_threshold(site.document, 66)
    # ~200 KiB of point globs: more than the retained message carries inline. Pushed at once,
    # maybe before the gateway's first session exists: a part lost so is asked for again.
    large["rules"][0]["points"] = ["gw-rc.boiler"] + [f"gw-rc.spare-{i:05d}-*"
                                                      for i in range(9000)]
    pushed = site.push(large, "大配置 / a large one")
    status = site.outcome(1, "the gateway's report on the large version")
    assert status["last_state"] == "applied" and status["running_hash"] == pushed["hash"], (
        status)
    # It came as a part on cmd (asked for again when the gateway connected after it went).
    assert "name=gateway_config_part" in site.agent.log(), site.agent.log()[-3000:]


def two_gateways(tmp: Path, procs: Procs, mosquitto: Mosquitto,
                 influx: tuple[InfluxDB, str]) -> tuple[str, str, Path, dict[str, Any]]:
    """Two gateways without devices in community ``ly`` (one point each in the registry),
    each with version 1 on the server: its own file."""
    points = {"gw-ba.boiler": ("gw-ba", "g01-a"), "gw-bb.boiler": ("gw-bb", "g02-a")}
    _server, base, config = start_server(procs, tmp, mosquitto.port, influx[0].url, influx[1],
                                         points)
    token = login(base, "control")
    documents = {}
    for gateway in ("gw-ba", "gw-bb"):
        document = {
            "gateway": {"id": gateway, "state_dir": str(tmp / gateway)},
            "mqtt": {"host": "127.0.0.1", "port": mosquitto.port, "keepalive_s": 10},
            "remote": {"health_window_s": 8},
            "rules": [{"type": "over_temperature", "points": ["*"], "threshold": 60}],
        }
        (tmp / f"{gateway}.yaml").write_text(yaml.safe_dump(document))
        procs.start(gateway, "gridsense-edge", "run", "--config", str(tmp / f"{gateway}.yaml"))
        http_json("POST", f"{base}/api/v1/gateways/{gateway}/config", token,
                  {"document": document, "reason": "现状 / as installed"})
        documents[gateway] = document
    return base, token, config, documents


def bulk(config: Path, change: str) -> tuple[int, dict[str, Any]]:
    done = subprocess.run(
        [str(Path(sys.executable).parent / "gridsense-server"), "config", "bulk",
         "--config", str(config), "--community", "ly", "--set", change, "--reason", "bulk",
         "--timeout", "60", "--json"],
        capture_output=True, text=True, timeout=300, check=False)
    return done.returncode, json.loads(done.stdout) if done.stdout else {"stderr": done.stderr}


def test_bulk_change_goes_gateway_by_gateway_and_pauses_at_the_first_failure(
        tmp_path: Path, procs: Procs, mosquitto: Mosquitto,
        influx: tuple[InfluxDB, str]) -> None:
    base, token, config, _documents = two_gateways(tmp_path, procs, mosquitto, influx)

    def status(gateway: str) -> dict[str, Any]:
        got: dict[str, Any] = http_json("GET", f"{base}/api/v1/gateways/{gateway}/config",
                                        token)["status"]
        return got

    for gateway in ("gw-ba", "gw-bb"):  # version 1 (the file it runs) reported applied
        procs.wait_until(lambda g=gateway: status(g)["last_state"] == "applied", 60,
                         f"{gateway} on version 1")
    code, report = bulk(config, "rules[type=over_temperature].threshold=72")
    assert code == 0, report
    assert [(d["gateway"], d["state"]) for d in report["done"]] == [
        ("gw-ba", "applied"), ("gw-bb", "applied")]
    assert all(status(g)["in_sync"] for g in ("gw-ba", "gw-bb"))

    code, report = bulk(config, f"mqtt.port={free_port()}")  # a broker nobody runs
    assert code == 3, report
    assert [(d["gateway"], d["state"]) for d in report["done"]] == [("gw-ba", "rolled_back")]
    assert report["paused_at"] == "gw-ba" and report["left"] == ["gw-bb"]
    assert status("gw-bb")["desired_version"] == 2  # untouched: no version 3 for it
    assert status("gw-ba")["running_version"] == 2 and status("gw-ba")["desired_version"] == 3

