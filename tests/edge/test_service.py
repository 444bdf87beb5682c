"""Running as a systemd service: the unit ``install-service`` writes passes
``systemd-analyze verify`` (a broken one does not), and the agent speaks the notify protocol
to a real datagram socket — READY once running, WATCHDOG pings at half the period, STOPPING."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from edge_support import AGENT_BIN, AgentProcess

from gridsense_devtools.ports import free_port
from gridsense_devtools.processes import env_without_proxies


def gateway_config(tmp_path: Path) -> Path:
    config = tmp_path / "etc" / "gateway.yaml"
    config.parent.mkdir()
    # A broker nobody listens on: the agent must start (and say READY) without its uplink.
    # A temperature-only gateway: one Modbus sensor on a port that is not there (yet) and a
    # threshold rule.
    config.write_text(f"gateway: {{id: gw-svc, state_dir: {tmp_path / 'state'}}}\n"
                      f"mqtt: {{host: 127.0.0.1, port: {free_port()}}}\n"
                      f"buses: [{{id: rs485-0, port: {tmp_path / 'ttyUSB0'}}}]\n"
                      "devices: [{type: modbus_temperature, point: gw-svc.t01, bus: rs485-0,"
                      " slave: 1, profile: xy-md02}]\n"
                      "rules: [{type: over_temperature, points: ['*'], threshold: 60}]\n")
    return config


# Native libraries of the optional extras (cryptography for TLS and passes, onnxruntime for
# models, OpenCV and numpy for cameras) and of the tools: a temperature-only agent maps none.
EXTRAS = ("cryptography", "onnxruntime", "cv2", "numpy", "_libosdp", "evdev", "psutil")


def mapped_libraries(pid: int) -> set[str]:
    with open(f"/proc/{pid}/maps") as maps:
        return {line.split()[-1] for line in maps if line.rstrip().endswith(".so")
                or ".so." in line}


def install(config: Path, unit_dir: Path) -> tuple[int, dict[str, object]]:
    done = subprocess.run([str(AGENT_BIN), "install-service", "--config", str(config),
                           "--unit-dir", str(unit_dir), "--memory-max", "128M", "--json"],
                          capture_output=True, text=True, timeout=120,
                          env=env_without_proxies(), check=False)
    return done.returncode, json.loads(done.stdout)


def test_the_unit_is_hardened_and_verifies(tmp_path: Path) -> None:
    config = gateway_config(tmp_path)
    code, result = install(config, tmp_path / "units")
    unit = (tmp_path / "units" / "gridsense-edge.service").read_text()
    for line in ("Type=notify", "SupplementaryGroups=dialout", "ProtectSystem=strict",
                 'Environment="PYTHONOPTIMIZE=2"', 'Environment="MALLOC_ARENA_MAX=2"',
                 f'Environment="PYTHONPYCACHEPREFIX={tmp_path / "state" / "pycache"}"',
                 f'ReadWritePaths="{tmp_path / "state"}"', "MemoryMax=128M", "WatchdogSec=60",
                 "User=gridsense", "NoNewPrivileges=true", "CapabilityBoundingSet=\n"):
        assert line in unit, line
    assert "ProtectClock=true" not in unit  # it would refuse the read-only adjtimex (clock.py)
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed here: the unit was written, not verified")
    assert code == 0 and result["verified"] is True, result

    broken = tmp_path / "broken" / "gridsense-edge.service"
    broken.parent.mkdir()
    broken.write_text(unit.replace(f'"{AGENT_BIN.absolute()}"', '"/nonexistent/gridsense-edge"'))
    from gridsense_edge.service.command import verify

    verified, problems = verify(broken)
    assert verified is False and "not executable" in problems


@pytest.fixture
def notify_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(30)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    monkeypatch.setenv("WATCHDOG_USEC", "1000000")  # pings every 0.5 s
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    yield sock
    sock.close()


def test_the_agent_notifies_ready_feeds_the_watchdog_and_says_stopping(
    tmp_path: Path, notify_socket: socket.socket,
    agents: Callable[[Path], AgentProcess], monkeypatch: pytest.MonkeyPatch,
) -> None:
    from gridsense_edge.service.unit import environment

    for name, value in environment(tmp_path / "state").items():  # as the unit runs it
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("PYTHONDONTWRITEBYTECODE", raising=False)  # a unit starts without it
    agent = agents(gateway_config(tmp_path))
    seen: list[str] = []

    def next_state() -> str:
        seen.append(notify_socket.recv(4096).decode())
        return seen[-1]

    while next_state() != "READY=1":
        pass
    libraries = mapped_libraries(agent.proc.pid)
    assert not [lib for lib in libraries if any(f"/{extra}" in lib for extra in EXTRAS)]
    assert any("pydantic_core" in lib for lib in libraries)  # the check sees site-packages
    # Optimised bytecode went to the state folder, the one place the unit lets it write.
    assert list((tmp_path / "state" / "pycache").rglob("agent.cpython-*.opt-2.pyc"))
    watchdogs = 0
    while watchdogs < 3:  # kept up after READY, not a one-off
        watchdogs += next_state() == "WATCHDOG=1"
    agent.stop(signal.SIGTERM)
    while next_state() != "STOPPING=1":
        pass
    assert set(seen) == {"READY=1", "WATCHDOG=1", "STOPPING=1"}, seen
