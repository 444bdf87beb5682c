"""The README's demo command stays true: it runs, shows readings, a camera incident with its
snapshot, a forced door, an escalation to the grid leader, and stops. Killed hard, it takes its
services along; a port it needs that is taken stops it at once, naming the holder."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from datetime import datetime
from pathlib import Path

import psutil

from gridsense_devtools.http import http_json, login, opener, trust_ca
from gridsense_devtools.ports import free_port
from gridsense_devtools.processes import env_without_proxies, spawn, wait_until


def demo_argv(repo_root: Path, work: Path, *options: str) -> list[str]:
    return [sys.executable, str(repo_root / "scripts" / "demo.py"), "--dir", str(work), *options]


def run_demo(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=240,
                          env=env_without_proxies(), check=False)


def processes_of(work: Path) -> list[int]:
    """Live processes whose command line names the demo's folder (zombies have none)."""
    found = subprocess.run(["pgrep", "-f", str(work)], capture_output=True, text=True, check=False)
    return [int(pid) for pid in found.stdout.split()]


def test_demo_runs_for_a_duration_and_reports_an_over_temperature_incident(
    tmp_path: Path, repo_root: Path
) -> None:
    http_port, https_port, influx_port = free_port(), free_port(), free_port()
    result = run_demo(demo_argv(repo_root, tmp_path / "demo", "--duration", "50",
                                "--http-port", str(http_port), "--https-port", str(https_port),
                                "--influx-port", str(influx_port)))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    # HTTPS with the demo's CA (the demo's own API calls check the certificate), the CA for a
    # phone on the plain port, and how to trust it, Chinese first.
    assert f"export GRIDSENSE_URL=https://localhost:{https_port} GRIDSENSE_CA=" in output
    assert f"http://localhost:{http_port}/ca.crt" in output
    assert output.index("安装证书") < output.index("Install a certificate"), output
    assert "worker-g01" in output and "password: demo" in output
    # gw-01 and the server speak TLS to the broker, with the CA the demo made beside its folder.
    ca_file = tmp_path / "demo-ca" / "ca.crt"
    assert f"CA certificate  {ca_file}" in output and ca_file.is_file(), output
    assert "InfluxDB temperature readings  gw-01.boiler" in output, output
    assert re.search(r"chart of gw-01.boiler .*: \d+ buckets, [1-9]\d* readings", output), output
    assert "incident over_temperature" in output and "gw-01.boiler" in output, output
    # The camera's intrusion with its drawn snapshot, the forced door at the entrance, the
    # residents' swipes, and an unaccepted incident escalated to the grid leader after 30 s.
    assert "incident intrusion" in output and "zone drawn: yes, box drawn: yes" in output, output
    assert "incident door_forced" in output and "gw-03.east-gate" in output, output
    assert "granted" in output, output
    assert "leader → leader-g01" in output, output
    # A resident's one-time code for the phone pass, and where to enter it.
    assert re.search(rf"open https://localhost:{https_port}/#/r  and enter  "
                     r"[2-9A-Z]{5}-[2-9A-Z]{5}", output), output
    # At gw-03's OSDP reader: the resident's phone QR, then her visitor's single-use pass
    # twice — granted once, refused the second time — each naming visitor and inviter.
    assert re.search(r"granted +pass +credential=ly-0101\n", output), output
    assert re.search(r"granted +pass +credential=ly-0101 visitor=王五 inviter=陈静", output), output
    assert re.search(r"denied +pass +credential=ly-0101 reason=used_up visitor=王五 inviter=陈静",
                     output), output
    # 莲园社区's generated site plan, with every demo point and gateway placed on it.
    assert "Site plan (平面图) of 莲园社区, 10 points and gateways placed" in output, output
    assert re.search(r"plan marker point   gw-01\.boiler +(overdue|alarm|open) ", output), output
    assert "stopped." in output
    # Each gateway's file is on the server as config version 1, which the gateway reported
    # running: the control room can change it from the web app at once.
    with sqlite3.connect(tmp_path / "demo" / "state" / "server.db") as db:
        states = dict(db.execute("SELECT gateway, last_state FROM gateway_config_state"))
    assert states == {"gw-01": "applied", "gw-02": "applied"}, (states, output)
    # Everything the demo started is gone: no process still holds the ports.
    assert processes_of(tmp_path / "demo") == []


def test_the_demo_runs_on_victoriametrics_and_its_charts_read_from_there(
    tmp_path: Path, repo_root: Path
) -> None:
    result = run_demo(demo_argv(repo_root, tmp_path / "demo", "--duration", "20",
                                "--timeseries", "victoriametrics",
                                "--victoria-port", str(free_port()),
                                "--http-port", str(free_port()),
                                "--https-port", str(free_port())))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    stored = re.search(r"VictoriaMetrics temperature readings  gw-01.boiler +(\d+)", output)
    charted = re.search(r"chart of gw-01.boiler .*: \d+ buckets, (\d+) readings", output)
    assert stored and charted, output
    # Read a moment apart while the gateways still report: the chart may hold a few more.
    assert 0 < int(stored.group(1)) <= int(charted.group(1)) <= int(stored.group(1)) + 10, output
    assert processes_of(tmp_path / "demo") == []


def test_a_fourth_gateway_enrolls_on_the_running_demo(tmp_path: Path, repo_root: Path) -> None:
    """The installer's first step on the demo itself: a one-time code from the API, the
    gateway's `enroll` with it (its own broker account and TLS certificate), then it runs and
    is online (the rest of the story: tests/e2e/test_installer_story.py)."""
    work, https_port = tmp_path / "demo", free_port()
    log = tmp_path / "demo.log"
    demo = spawn(demo_argv(repo_root, work, "--ca-dir", str(tmp_path / "ca"),
                           "--https-port", str(https_port), "--http-port", str(free_port()),
                           "--influx-port", str(free_port()), "--duration", "120"), log)
    gateway: subprocess.Popen[bytes] | None = None
    try:
        wait_until(lambda: "gridsense demo is running" in log.read_text() or demo.poll(), 180,
                   "the demo to run")
        assert demo.poll() is None, log.read_text()
        base = f"https://localhost:{https_port}"
        trust_ca(tmp_path / "ca" / "ca.crt")
        installer = login(base, "installer-ly")
        created = http_json("POST", f"{base}/api/v1/gateways", installer,
                            {"id": "gw-04", "community": "ly", "name": "4号楼网关"})
        state = tmp_path / "gw-04"
        enrolled = subprocess.run(
            [str(Path(sys.executable).parent / "gridsense-edge"), "enroll", "--uri",
             created["enroll_uri"], "--state-dir", str(state), "--json"],
            capture_output=True, text=True, timeout=60, env=env_without_proxies(), check=False)
        assert enrolled.returncode == 0, enrolled.stdout + enrolled.stderr
        gateway = spawn([str(Path(sys.executable).parent / "gridsense-edge"), "run", "--config",
                         str(state / "gateway.yaml")], tmp_path / "gw-04.log")
        control = login(base, "control")
        wait_until(lambda: any(g["id"] == "gw-04" and g["state"] == "online" for g in http_json(
            "GET", f"{base}/api/v1/gateways", control)), 60, "gw-04 online on the demo")
    finally:
        if gateway is not None:
            gateway.terminate()
            gateway.wait(20)
        demo.send_signal(signal.SIGINT)
        demo.wait(120)
    assert processes_of(work) == []


def test_a_demo_killed_hard_takes_its_services_along_and_starts_again_on_its_ports(
    tmp_path: Path, repo_root: Path
) -> None:
    work = tmp_path / "demo"
    ports = ["--http-port", str(free_port()), "--https-port", str(free_port()),
             "--influx-port", str(free_port()),
             "--mqtt-port", str(free_port())]
    log = tmp_path / "first-demo.log"
    first = spawn(demo_argv(repo_root, work, *ports), log)
    try:
        drill = wait_until(
            lambda: re.search(r"kill -STOP (\d+) \(broker\) or (\d+) \(InfluxDB\)",
                              log.read_text()) or first.poll() is not None,
            180, "the demo to run")
        assert first.poll() is None, log.read_text()
        services = [int(pid) for pid in drill.groups()]
        assert all(psutil.pid_exists(pid) for pid in services)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    wait_until(lambda: not processes_of(work), 20, "the killed demo's processes to die too")
    assert not any(_alive(pid) for pid in services), "the broker or InfluxDB outlived the demo"

    again = run_demo(demo_argv(repo_root, work, "--duration", "1", *ports))
    output = again.stdout + again.stderr
    assert again.returncode == 0, output
    assert "gridsense demo is running" in output and "stopped." in output, output
    assert "Not authorized" not in (work / "logs" / "server.log").read_text()


def test_a_taken_port_stops_the_demo_at_once_naming_the_process_that_holds_it(
    tmp_path: Path, repo_root: Path
) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = run_demo(demo_argv(repo_root, tmp_path / "demo", "--http-port", str(port),
                                    "--https-port", str(free_port()),
                                    "--influx-port", str(free_port())))
    assert result.returncode != 0
    assert f"port {port} (server HTTP) is already in use by pid {os.getpid()}" in result.stderr, (
        result.stderr)
    assert not (tmp_path / "demo").exists(), "nothing was started or written"


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def resident_invites(base: str, code: str, visitor: str, uses: int) -> str:
    """What the resident's phone page does: sign in with the one-time code, invite a visitor;
    returns the link the page offers to send."""
    def call(path: str, body: object, headers: dict[str, str]) -> tuple[dict[str, object], str]:
        request = urllib.request.Request(base + path, json.dumps(body).encode(),
                                         {"Content-Type": "application/json", **headers},
                                         method="POST")
        with opener().open(request, timeout=30) as reply:
            return json.loads(reply.read()), reply.headers.get("Set-Cookie", "")

    signed_in, cookie = call("/api/v1/resident/sign-in", {"code": code}, {})
    now = time.time()
    iso = lambda t: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))  # noqa: E731
    made, _ = call("/api/v1/resident/visitors",
                   {"name": visitor, "phone": "13900000000", "not_before": iso(now - 60),
                    "not_after": iso(now + 3600), "uses": uses},
                   {"Cookie": cookie.split(";")[0], "X-CSRF-Token": str(signed_in["csrf_token"])})
    return str(made["link"])


def test_a_visitor_pass_made_on_the_phone_opens_the_door_and_holds_with_the_server_stopped(
    tmp_path: Path, repo_root: Path
) -> None:
    """The newcomer's way through the demo's printed steps: the resident's one-time code, a
    visitor invited for two entries, the link shown at the gate's scanner: granted; the server
    stopped, shown twice more: granted, then refused as used up — decided by the gateway alone;
    once the server runs again the access log names visitor and inviter for all three."""
    work, https_port = tmp_path / "demo", free_port()
    log = tmp_path / "demo.log"
    demo = spawn(demo_argv(repo_root, work, "--ca-dir", str(tmp_path / "ca"),
                           "--https-port", str(https_port), "--http-port", str(free_port()),
                           "--influx-port", str(free_port()), "--duration", "240"), log)
    server_pid = 0
    try:
        wait_until(lambda: "gridsense demo is running" in log.read_text() or demo.poll(), 180,
                   "the demo to run")
        assert demo.poll() is None, log.read_text()
        printed = log.read_text()
        code = re.search(r"and enter  ([2-9A-Z]{5}-[2-9A-Z]{5})", printed)
        gate = re.search(r"echo '<link>' > (\S+)", printed)
        stop = re.search(r"kill -STOP -- -(\d+)", printed)
        assert code and gate and stop, printed
        server_pid = int(stop.group(1))
        base = f"https://localhost:{https_port}"
        trust_ca(tmp_path / "ca" / "ca.crt")
        link = resident_invites(base, code.group(1), "李四", uses=2)
        control = login(base, "control")

        def visitor_uses() -> list[dict[str, object]]:
            events = http_json("GET", f"{base}/api/v1/access-events?door=b1-east&limit=200",
                               control)
            return sorted((e for e in events if e.get("visitor") == "李四"),
                          key=lambda e: str(e["ts"]))

        # The entrance's gateway has its first credential copy once a resident's card opens.
        wait_until(lambda: any(e["result"] == "granted" for e in http_json(
            "GET", f"{base}/api/v1/access-events?door=b1-east&limit=50", control)), 90,
            "the entrance's first granted swipe")
        Path(gate.group(1)).write_text(link + "\n")
        wait_until(lambda: len(visitor_uses()) == 1, 60, "the first scan in the access log")
        os.killpg(server_pid, signal.SIGSTOP)
        stopped_at = time.time()
        try:
            for _ in range(2):
                Path(gate.group(1)).write_text(link + "\n")
                time.sleep(3)  # two people at the door, not one double read
        finally:
            os.killpg(server_pid, signal.SIGCONT)
        resumed_at = time.time()
        wait_until(lambda: len(visitor_uses()) == 3, 90, "the scans made while it was stopped")
        uses = visitor_uses()
        assert [(e["result"], e["reason"]) for e in uses] == [
            ("granted", None), ("granted", None), ("denied", "used_up")], uses
        assert all(e["method"] == "pass" and e["inviter_name"] == "陈静"
                   and e["credential"] == "ly-0101" for e in uses), uses
        decided = [datetime.fromisoformat(str(e["ts"]).replace("Z", "+00:00")).timestamp()
                   for e in uses[1:]]
        assert all(stopped_at - 1 <= t <= resumed_at + 1 for t in decided), (decided, uses)
    finally:
        if server_pid:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server_pid, signal.SIGCONT)
        demo.send_signal(signal.SIGINT)
        demo.wait(120)
