"""A real server killed with -9 in the middle of an escalation: after the restart every step is
executed exactly once — nothing skipped, nobody paged twice — and the history says so."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from server_helpers import EdgePublisher

from gridsense_devtools.http import http_json, login
from gridsense_devtools.processes import Procs, wait_until
from gridsense_devtools.server_process import launch_server, write_registry_and_config
from gridsense_devtools.services import InfluxDB, Mosquitto

POINTS = {"gw-01.boiler": ("gw-01", "g01-a")}
STAFF = """\
  - {username: leader-g01, name: 王强, role: leader, grids: [g01], password: demo}
  - {username: duty-ly, name: 值班, role: duty_officer, communities: [ly], password: demo}
"""
# Step 0 at once, step 1 at 6 s (while the server is down), step 2 at 12 s (after restart).
LIFECYCLE = """
lifecycle:
  tick_s: 0.2
  policies:
    restart:
      steps:
        - {after_s: 0, notify: [workers]}
        - {after_s: 6, notify: [leader]}
        - {after_s: 12, notify: [duty_officer]}
"""


def _history(base: str, token: str, incident: str) -> list[dict]:
    return list(http_json("GET", f"{base}/api/v1/incidents/{incident}", token)["history"])


def test_kill_9_mid_escalation_neither_skips_nor_repeats(
    tmp_path: Path, mosquitto: Mosquitto, influx: tuple[InfluxDB, str]
) -> None:
    config, base = write_registry_and_config(tmp_path, mosquitto.port, influx[0].url, influx[1],
                                       POINTS)
    registry = tmp_path / "registry.yaml"
    registry.write_text(registry.read_text() + STAFF)
    config.write_text(config.read_text() + LIFECYCLE)
    procs = Procs(tmp_path)
    edge = EdgePublisher(mosquitto.port, "gw-01")
    try:
        server = launch_server(procs, config, base)
        token = login(base, "control")
        edge.publish(edge.incident("gw-01.boiler"))
        incidents = wait_until(lambda: http_json("GET", f"{base}/api/v1/incidents", token),
                               30, "the incident")
        incident = incidents[0]["id"]
        wait_until(lambda: [h for h in _history(base, token, incident)
                            if h["action"] == "escalate"], 30, "the first page")
        server.kill9()
        time.sleep(7)  # step 1 falls due while the server is dead
        launch_server(procs, config, base)
        token = login(base, "control")

        def escalations() -> list[str]:
            return [h["note"] for h in _history(base, token, incident)
                    if h["action"] == "escalate"]

        wait_until(lambda: len(escalations()) == 3, 60, "all three steps")
        time.sleep(2)  # several more scheduler ticks: still exactly three
        notes = escalations()
        assert len(notes) == 3, notes
        assert [n.split(":")[0] for n in notes] == [
            "step 1/3 loop 1", "step 2/3 loop 1", "step 3/3 loop 1"]
        assert "worker-g01" in notes[0] and "leader-g01" in notes[1] and "duty-ly" in notes[2]
        with sqlite3.connect(tmp_path / "server.db") as db:
            pages = db.execute("SELECT recipient, channel, count(*) FROM deliveries "
                               "GROUP BY recipient, channel ORDER BY recipient").fetchall()
        assert pages == [("duty-ly", "app", 1), ("leader-g01", "app", 1),
                         ("worker-g01", "app", 1)]
    finally:
        edge.close()
        procs.stop_all()
