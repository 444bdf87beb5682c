"""The demo's building entrance: gateway gw-03 at 1号楼东门 with an OSDP reader (simulated by
libosdp on a pty), a few residents enrolled through the credentials API, their swipes in the
access log, an unknown card, and — 38 s in — the door forced open: a door_forced incident for
grid g01's worker. scripts/demo.py calls these; nothing here runs on its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from gridsense_devtools.http import http, http_json, login
from gridsense_devtools.processes import Proc, Procs

REPO = Path(__file__).resolve().parent.parent
ACCESS_GATEWAY = "gw-03"
POINT = "gw-03.east-gate"
DOOR = "b1-east"
RESIDENTS = [  # id, holder, card number (a real reader reports these from the card)
    ("ly-0101", "陈静", "10010101"),
    ("ly-0102", "周强", "10010102"),
    ("ly-0203", "吴敏", "10010203"),
    ("ly-0305", "郑磊", "10010305"),
]
UNKNOWN_CARD = "99990001"
FORCED_AT_S = 38.0
# (seconds after start, action): residents come and go, a stranger tries a card, the door is
# forced and closed again a minute later.
SCRIPT: list[tuple[float, dict[str, Any]]] = [
    (8, {"do": "close"}),
    (10, {"do": "card", "number": RESIDENTS[0][2]}), (11, {"do": "open"}), (14, {"do": "close"}),
    (18, {"do": "card", "number": RESIDENTS[1][2]}), (19, {"do": "open"}), (22, {"do": "close"}),
    (26, {"do": "card", "number": UNKNOWN_CARD}),
    (29, {"do": "exit"}), (30, {"do": "open"}), (31, {"do": "close"}),
    (33, {"do": "card", "number": RESIDENTS[2][2]}), (34, {"do": "open"}), (36, {"do": "close"}),
    (FORCED_AT_S, {"do": "open"}), (FORCED_AT_S + 60, {"do": "close"}),
    (110, {"do": "card", "number": RESIDENTS[3][2]}), (111, {"do": "open"}),
    (114, {"do": "close"}),
]


def enroll_residents(base: str, token: str) -> int:
    """The way an office would: a CSV import into community ly."""
    rows = ["id,holder,card,doors"] + [f"{i},{h},{c},{DOOR}" for i, h, c in RESIDENTS]
    body, _ = http(f"{base}/api/v1/communities/ly/credentials/import", token,
                   ("\n".join(rows) + "\n").encode(), content_type="text/csv")
    return int(json.loads(body)["imported"])


def train_model(work: Path) -> Path:
    out = work / "models" / "access_anomaly.onnx"
    subprocess.run([sys.executable, str(REPO / "models" / "access_anomaly" / "train.py"),
                    "simulate", "--out", str(out)], check=True, capture_output=True, timeout=300)
    return out


def reader_key(work: Path) -> Path:
    """The reader's secure-channel key: the reader (simulator) and the agent share it."""
    key = work / "secrets" / f"{ACCESS_GATEWAY}-reader-1.key"
    if not key.exists():
        key.write_text(os.urandom(16).hex())
        key.chmod(0o600)
    return key


def access_gateway_config(mqtt_port: int, work: Path) -> Path:
    key = reader_key(work)
    config = {
        "gateway": {"id": ACCESS_GATEWAY, "state_dir": str(work / "state" / ACCESS_GATEWAY)},
        "mqtt": {"host": "127.0.0.1", "port": mqtt_port, "keepalive_s": 15,
                 "password_file": str(work / "secrets" / f"{ACCESS_GATEWAY}.password")},
        "health": {"interval_s": 10},
        "devices": [{
            "type": "osdp_reader", "point": POINT, "port": str(work / "tty" / "gw-03-osdp"),
            "address": 1, "key_file": str(key), "door": DOOR, "building": "b1",
            "held_open_s": 30, "anomaly_model": str(train_model(work)),
            # A demo machine may run without NTP: its clock is trusted for passes. A gateway
            # in the field keeps the default (auto: synchronised since boot, or refused).
            "pass_clock": "rtc",
        }],
    }
    path = work / "config" / f"{ACCESS_GATEWAY}.yaml"
    path.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


class EntranceScript:
    """The reader simulator process and the person at the door (a thread feeding its stdin)."""

    def __init__(self, work: Path, procs: Procs) -> None:
        self.link = work / "tty" / "gw-03-osdp"
        key = reader_key(work)
        self.proc: Proc = procs.start(
            "sim-gw-03", "gridsense-edge", "simulate", "osdp", "--link", str(self.link),
            "--reader", f"1:{key}", "--json", stdin=subprocess.PIPE)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._play, daemon=True)

    def play(self) -> None:
        self._thread.start()

    def _play(self) -> None:
        start = time.monotonic()
        for at, action in SCRIPT:
            if self._stop.wait(max(0.0, start + at - time.monotonic())):
                return
            try:
                stdin = self.proc.popen.stdin
                assert stdin is not None
                stdin.write((json.dumps({"reader": 1, **action}) + "\n").encode())
                stdin.flush()
            except (OSError, ValueError):
                return

    def stop(self) -> None:
        self._stop.set()


def what_to_try_access(base: str) -> str:
    return f"""The building entrance (gw-03, 1号楼东门) has an OSDP reader: residents swipe every
few seconds, a stranger's card is refused, and {FORCED_AT_S:.0f} s in the door is forced open — a
door_forced incident for worker-g01 (held open past 30 s: door_held_open too).
  access log      {base}/api/v1/access-events?door={DOOR}   (control or worker-g01 token)
  residents       {base}/api/v1/communities/ly/credentials  (control); revoke one with
                  curl -X DELETE -H "Authorization: Bearer $TOKEN" {base}/api/v1/credentials/ly-0305
                  and its swipe ~110 s in is refused."""


def access_summary(base: str, token: str) -> None:
    events = http_json("GET", f"{base}/api/v1/access-events?door={DOOR}&limit=50", token)
    for event in reversed(events):
        who = event["credential"] or "-"
        why = f" reason={event['reason']}" if event["reason"] else ""
        print(f"  access {event['ts'][11:19]} {event['door']:<8} {event['result']:<16} "
              f"{event['method']:<6} credential={who}{why}")


def start_entrance(procs: Procs, work: Path, mqtt_port: int, base: str) -> EntranceScript:
    """Reader simulator, gw-03's agent, the residents' enrolment, then the script plays.
    ``procs`` are the demo's: they stop both processes with the rest."""
    entrance = EntranceScript(work, procs)
    procs.wait_until(entrance.link.exists, 30, "simulated OSDP reader of gw-03")
    procs.start(ACCESS_GATEWAY, "gridsense-edge", "run", "--config",
                str(access_gateway_config(mqtt_port, work)))
    enroll_residents(base, login(base))
    entrance.play()
    return entrance
