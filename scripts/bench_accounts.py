"""Broker-account benchmark: what an account change costs on Mosquitto's dynamic-security plugin
as the number of accounts grows. Never run by the test suite.

The plugin rewrites its whole state file after every change (~1.5 KB per gateway: its client
and its own role), inside the broker's single thread, so a change costs more — and pauses the
broker longer — the more accounts there are. Reports, per step of accounts added: the mean time
of one `add` (two changes: the gateway's role and its client), of a `list`, and of a `revoke`,
and the state file's size.

Usage: .venv/bin/python scripts/bench_accounts.py [--steps 250,500,1000,2000]
Each result is one JSON line.
"""

from __future__ import annotations

import argparse
import json
import secrets
import tempfile
import time
from pathlib import Path

from gridsense_devtools.ports import free_port
from gridsense_devtools.services import Mosquitto
from gridsense_server.broker import Role
from gridsense_server.broker.dynsec_file import write_initial_state
from gridsense_server.broker.mosquitto_dynsec import dynsec_accounts

ADMIN = "gridsense-admin"
PASSWORD = "bench-password-" + secrets.token_hex(8)
SAMPLE = 20  # adds and revokes timed at each step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", default="250,500,1000,2000",
                        help="account counts at which to measure (comma-separated)")
    steps = sorted(int(n) for n in parser.parse_args().steps.split(","))
    with tempfile.TemporaryDirectory() as folder:
        state = Path(folder) / "dynamic-security.json"
        admin_password = secrets.token_urlsafe(18)
        write_initial_state(state, ADMIN, admin_password)
        broker = Mosquitto(Path(folder) / "mosquitto", free_port(), dynsec_file=state).start()
        try:
            with dynsec_accounts("127.0.0.1", broker.port, ADMIN, admin_password,
                                 timeout_s=60) as accounts:
                count = 0
                for step in steps:
                    while count < step - SAMPLE:
                        accounts.add(f"gw-{count:05d}", Role.GATEWAY, PASSWORD)
                        count += 1
                    started = time.perf_counter()
                    for _ in range(SAMPLE):
                        accounts.add(f"gw-{count:05d}", Role.GATEWAY, PASSWORD)
                        count += 1
                    add_ms = (time.perf_counter() - started) / SAMPLE * 1000
                    started = time.perf_counter()
                    listed = len(accounts.list())
                    list_ms = (time.perf_counter() - started) * 1000
                    started = time.perf_counter()
                    for i in range(count - SAMPLE, count):
                        accounts.revoke(f"gw-{i:05d}")
                    revoke_ms = (time.perf_counter() - started) / SAMPLE * 1000
                    for i in range(count - SAMPLE, count):  # back to `step` accounts
                        accounts.add(f"gw-{i:05d}", Role.GATEWAY, PASSWORD)
                    print(json.dumps({
                        "bench": "broker_accounts", "accounts": listed - 1,
                        "add_ms": round(add_ms, 1), "list_ms": round(list_ms, 1),
                        "revoke_ms": round(revoke_ms, 1),
                        "state_file_kb": round(state.stat().st_size / 1024),
                    }), flush=True)
        finally:
            broker.stop()


if __name__ == "__main__":
    main()
