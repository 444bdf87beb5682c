"""`gridsense-edge discover` as an installer runs it on a gateway whose agent is running: the
agent lends its RS-485 port, the Modbus and OSDP lines are scanned, and the draft it prints
passes the config models."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import yaml
from discover_support import IDENTIFIED_PROFILE, modbus_line, profiles_with_identity
from edge_support import AGENT_BIN, start_agent, write_config

from gridsense_devtools.ports import free_port
from gridsense_devtools.processes import env_without_proxies, wait_until
from gridsense_edge.config import load_config
from gridsense_edge.simulator.osdp import OsdpReaderSimulator, SimulatedReader


def test_discover_with_a_running_agent(tmp_path: Path) -> None:
    profiles = profiles_with_identity(tmp_path / "fw")
    modbus = modbus_line(tmp_path / "ttyRS485", profiles)
    key = bytes(range(16))
    osdp = OsdpReaderSimulator(tmp_path / "ttyOSDP", [SimulatedReader(3, key)])
    osdp.start()
    key_file = tmp_path / "door.key"
    key_file.write_text(key.hex())
    key_file.chmod(0o600)
    config = write_config(tmp_path / "gateway.yaml", {
        "gateway": {"id": "gw-d1", "state_dir": "./state"},
        "mqtt": {"host": "127.0.0.1", "port": free_port()},  # no broker: the agent runs anyway
        "profiles_dir": str(profiles),
        "buses": [{"id": "rs485-0", "port": "./ttyRS485", "timeout_s": 0.3}],
        "devices": [{"type": "modbus_temperature", "point": "gw-d1.s1", "bus": "rs485-0",
                     "slave": 1, "profile": "xy-md02", "poll_interval_s": 0.2},
                    {"type": "osdp_reader", "point": "gw-d1.door",
                     "port": str(tmp_path / "ttyOSDP"), "address": 3, "key_file": "./door.key"}],
    })
    agent = start_agent(config, tmp_path / "agent.log")
    try:
        wait_until(lambda: (tmp_path / "state" / "control.sock").exists()
                   and "bus_up" in agent.log() and "osdp_reader_online" in agent.log(), 30,
                   "the agent's bus, reader and control socket")
        out = tmp_path / "out"
        done = subprocess.run(
            [str(AGENT_BIN), "discover", "--config", str(config), "--modbus",
             str(tmp_path / "ttyRS485"), "--ids", "1-6", "--id-timeout", "0.3", "--osdp",
             str(tmp_path / "ttyOSDP"), "--addresses", "0-7", "--camera",
             "rtsp://127.0.0.1:9/none", "--out", str(out), "--json"],
            capture_output=True, text=True, timeout=120, env=env_without_proxies())
        wait_until(lambda: agent.log().count("bus_up") >= 2, 30, "the agent reopening its bus")
        wait_until(lambda: agent.log().count("osdp_reader_online") >= 2, 30,
                   "the reader back online with the agent")
    finally:
        agent.stop()
        osdp.stop()
        modbus.stop()
    result = json.loads(done.stdout)
    # The unreachable camera is a failure to report (exit 1), not a reason to lose the rest.
    assert done.returncode == 1, done.stderr
    assert "the running agent lent it (modbus:rs485-0)" in done.stderr
    assert "the running agent lent it (osdp:" in done.stderr
    log = agent.log()
    assert "bus_lent" in log and "bus_taken_back" in log
    assert "osdp_port_lent" in log and "osdp_port_taken_back" in log
    assert "reader_offline" not in log  # lending pages nobody
    [scan] = result["modbus"]
    assert {f["slave"]: f["answer"] for f in scan["found"]} == {
        1: "exception", 2: "exception", 4: "garbled"}
    assert [r["address"] for r in result["osdp"][0]["found"]] == [3]
    assert result["cameras"][0]["ok"] is False
    draft = result["draft"]
    assert draft["valid"] is True
    checked = load_config(draft["path"])
    assert checked.gateway.id == "gw-d1"
    assert [(d.slave, d.profile) for d in checked.devices] == [(2, IDENTIFIED_PROFILE)]
    pending = " ".join(p["why"] for p in draft["pending"])
    assert "slave 1" in pending and "未知" in pending and "OSDP reader 3" in pending
    # The unidentified sensor comes with the profiles its answers fit, for the installer page.
    [unknown] = [p for p in draft["pending"] if p["entry"].get("slave") == 1]
    assert isinstance(unknown["candidates"], list)
    assert "# 待补全的设备" in draft["yaml"]
    # The same draft as data, the shape the installer page reads from this output.
    assert result["config"] == yaml.safe_load(draft["yaml"])


def test_without_an_agent_the_draft_stands_alone(tmp_path: Path) -> None:
    done = subprocess.run([str(AGENT_BIN), "discover", "--gateway-id", "gw-new",
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=60,
                          env=env_without_proxies())
    assert done.returncode == 0, done.stderr
    assert "# 串口 / serial ports" in done.stdout
    checked = load_config(tmp_path / "gateway.draft.yaml")
    assert checked.gateway.id == "gw-new" and checked.devices == []
    assert (tmp_path / "gateway.draft.yaml").stat().st_mode & 0o777 == 0o600
    assert checked.gateway.state_dir == tmp_path / "state" / "gw-new"


def test_a_bad_gateway_id_makes_an_invalid_draft_and_exit_1(tmp_path: Path) -> None:
    done = subprocess.run([str(AGENT_BIN), "discover", "--gateway-id", "not an id", "--out",
                           str(tmp_path), "--json"], capture_output=True, text=True,
                          timeout=60, env=env_without_proxies())
    assert done.returncode == 1
    result = json.loads(done.stdout)
    assert result["draft"]["valid"] is False
    assert any("gateway.id" in failure for failure in result["failures"])


def test_bad_usage_exits_2(tmp_path: Path) -> None:
    done = subprocess.run([str(AGENT_BIN), "discover", "--ids", "0-300", "--out",
                           str(tmp_path)], capture_output=True, text=True, timeout=60,
                          env=env_without_proxies())
    assert done.returncode == 2 and "1..247" in done.stderr
