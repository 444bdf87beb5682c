"""The demo's electronic passes. The community's gates read through OSDP readers, so its passes
are compact. Resident 陈静 (ly-0101, 1号楼) gets a one-time code for a real phone; a second
code plays her phone in the script: her current QR is scanned at gw-03's reader (granted),
she invites a visitor whose single-use pass is scanned twice (granted, then refused: used up);
the access log names visitor and inviter. scripts/demo.py calls these.
"""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from demo_access import EntranceScript

from gridsense_devtools.http import http_json, login, opener

RESIDENT = ("ly-0101", "陈静")
# Seconds after the entrance's script starts: her phone between the first swipes, her visitor
# after the forced door (a grant just before it would make that opening an expected one).
RESIDENT_SCAN_AT_S = 24.0
VISITOR_SCAN_AT_S = 41.0
SYNC_WAIT_S = 5.0  # a new pass record reaches the gateway (pushed at once) before its scan
VISITOR = "王五"


def seed_resident_code(base: str) -> dict[str, str]:
    """The community's gates are OSDP readers (compact passes), and a one-time sign-in code
    for the demo's first resident (the control room's button)."""
    token = login(base)
    http_json("PUT", f"{base}/api/v1/communities/ly/pass-settings", token, {"compact": True})
    return dict(http_json("POST", f"{base}/api/v1/credentials/{RESIDENT[0]}/resident-code",
                          token, {}))


class Phone:
    """A resident's phone as the page uses the API: a session cookie and its CSRF token."""

    def __init__(self, base: str, code: str) -> None:
        self.base = base
        reply = self._call("POST", "/api/v1/resident/sign-in", {"code": code}, signing_in=True)
        self.csrf = reply["csrf_token"]

    def _call(self, method: str, path: str, body: Any = None, *,
              signing_in: bool = False) -> Any:
        headers = {"Content-Type": "application/json"}
        if not signing_in:
            headers |= {"Cookie": self.cookie, "X-CSRF-Token": self.csrf}
        request = urllib.request.Request(
            self.base + path, None if body is None else json.dumps(body).encode(), headers,
            method=method)
        with opener().open(request, timeout=30) as reply:
            if signing_in:
                found = reply.headers.get("Set-Cookie", "")
                self.cookie = found.split(";")[0]
            return json.loads(reply.read())

    def current_qr(self) -> str:
        now = time.time()
        tokens = self._call("GET", "/api/v1/resident/pass")["tokens"]
        return next(t["qr"] for t in tokens if t["not_before"] <= now < t["not_after"])

    def invite(self) -> str:
        start = time.time()
        iso = lambda t: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))  # noqa: E731
        made = self._call("POST", "/api/v1/resident/visitors", {
            "name": VISITOR, "phone": "13800000000", "not_before": iso(start),
            "not_after": iso(start + 4 * 3600), "uses": 1})
        return str(made["link"]).rsplit("/#/v/", 1)[1]


def play_passes(base: str, entrance: EntranceScript) -> None:
    """The resident at the door with her phone, then her visitor, twice (a thread)."""
    started = time.monotonic()

    def at(second: float) -> None:
        time.sleep(max(0.0, started + second - time.monotonic()))

    def story() -> None:
        at(RESIDENT_SCAN_AT_S - SYNC_WAIT_S - 2)
        code = http_json("POST", f"{base}/api/v1/credentials/{RESIDENT[0]}/resident-code",
                         login(base), {})["code"]
        phone = Phone(base, code)
        phone.current_qr()  # the first fetch makes her pass record; the gateway gets it
        at(RESIDENT_SCAN_AT_S)
        entrance.act({"do": "scan", "text": phone.current_qr()})
        link = phone.invite()
        qr = http_json("GET", f"{base}/api/v1/visitor/{link}")["qr"]
        for second in (VISITOR_SCAN_AT_S, VISITOR_SCAN_AT_S + 3):  # single use: once
            at(second)
            entrance.act({"do": "scan", "text": qr})

    threading.Thread(target=story, daemon=True, name="demo-passes").start()


class GateScanner:
    """A named pipe standing in for the scanner at 1号楼东门: each line written to it is
    scanned at gw-03's reader — a pass's QR text, or a visitor link as the phone got it (its
    QR fetched from the server the first time and remembered, so it still scans while the
    server is stopped)."""

    def __init__(self, work: Path, base: str, entrance: EntranceScript) -> None:
        self.path = work / "gate-b1-east"
        self.base = base
        self.entrance = entrance
        self._known: dict[str, str] = {}
        os.mkfifo(self.path, 0o600)
        threading.Thread(target=self._serve, daemon=True, name="demo-gate").start()

    def _serve(self) -> None:
        while True:
            with open(self.path, encoding="utf-8") as pipe:  # blocks until someone writes
                for line in pipe:
                    if line.strip():
                        self._scan(line.strip())

    def _scan(self, text: str) -> None:
        if "#/v/" in text:
            token = text.rsplit("#/v/", 1)[1]
            if token not in self._known:
                try:
                    shown = http_json("GET", f"{self.base}/api/v1/visitor/{token}")
                    self._known[token] = shown["qr"]
                except (OSError, urllib.error.URLError, KeyError, ValueError) as exc:
                    print(f"gate: 取不到这个访客链接的通行码 / cannot fetch this visitor link's "
                          f"pass: {exc}", flush=True)
                    return
            text = self._known[token]
        print(f"gate: 扫码 / scanned at 1号楼东门: {text[:22]}…", flush=True)
        self.entrance.act({"do": "scan", "text": text})


def what_to_try_passes(base: str, code: dict[str, str], gate: Path, server_pid: int) -> str:
    resident, name = RESIDENT
    until = code["expires_at"][:16]
    return f"""Electronic passes (电子出入证): resident {name} ({resident}, building b1) signs
in on a phone with a one-time code; the control room prints one at {base}/#/passes.
  on the phone    open {base}/#/r  and enter  {code["code"]}   (works once, until {until})
                  the pass shows the current minute's QR (a day of them is kept for no signal);
                  "邀请访客" makes a visitor pass for building b1 and a link to send
  at the door     {RESIDENT_SCAN_AT_S:.0f} s in, {name}'s phone QR opens 1号楼东门 (gw-03's OSDP
                  reader: compact passes); from {VISITOR_SCAN_AT_S:.0f} s her visitor {VISITOR}'s
                  single-use pass opens it once, then is refused
  your visitor    on the phone, 邀请访客 (uses: 2), copy the link, then show it at the door:
                  echo '<link>' > {gate}      → granted (the door opens)
                  kill -STOP -- -{server_pid}   (the server stops answering); scan it twice more:
                  granted (offline, from gw-03's own copy), then refused: used_up
                  kill -CONT -- -{server_pid}   the offline uses reach the access log
  control room    {base}/#/passes: the access log names each pass use's visitor and inviter;
                  revoke a visitor pass there or on the resident's phone
  keys            .venv/bin/gridsense-server passes keys --config <config>  (rotate-key, code)"""
