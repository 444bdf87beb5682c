"""The README's demo command stays true: it runs, shows readings, a camera incident with its
snapshot, a forced door, an escalation to the grid leader, and stops."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from gridsense_devtools.ports import free_port
from gridsense_devtools.processes import env_without_proxies


def test_demo_runs_for_a_duration_and_reports_an_over_temperature_incident(
    tmp_path: Path, repo_root: Path
) -> None:
    http_port, influx_port = free_port(), free_port()
    result = subprocess.run(
        [
            sys.executable,
            str(repo_root / "scripts" / "demo.py"),
            "--duration",
            "50",
            "--http-port",
            str(http_port),
            "--influx-port",
            str(influx_port),
            "--dir",
            str(tmp_path / "demo"),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        env=env_without_proxies(),
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert f"http://127.0.0.1:{http_port}/" in output
    assert "worker-g01" in output and "password: demo" in output
    assert "InfluxDB temperature readings  gw-01.boiler" in output, output
    assert "incident over_temperature" in output and "gw-01.boiler" in output, output
    # The camera's intrusion with its drawn snapshot, the forced door at the entrance, the
    # residents' swipes, and an unaccepted incident escalated to the grid leader after 30 s.
    assert "incident intrusion" in output and "zone drawn: yes, box drawn: yes" in output, output
    assert "incident door_forced" in output and "gw-03.east-gate" in output, output
    assert "granted" in output, output
    assert "leader → leader-g01" in output, output
    assert "stopped." in output
    # Everything the demo started is gone: no process still holds the ports.
    leftovers = subprocess.run(
        ["pgrep", "-f", str(tmp_path / "demo")], capture_output=True, text=True, check=False
    )
    assert leftovers.stdout.strip() == "", leftovers.stdout
