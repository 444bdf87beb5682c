"""The demo's remote configuration: each gateway's file goes to the server as version 1, so the
control room can change it from the web app (远程配置 / Remote config) at once."""

from __future__ import annotations

import subprocess
from pathlib import Path

from gridsense_devtools.processes import BIN


def seed_configs(server_yaml: Path, gateways: dict[str, Path]) -> None:
    """``gridsense-server config set`` for each gateway (the server pushes it within seconds;
    the gateway already runs it, so it only reports it applied)."""
    for gateway, config in gateways.items():
        done = subprocess.run(
            [str(BIN / "gridsense-server"), "config", "set", gateway, "--config",
             str(server_yaml), "--file", str(config),
             "--reason", "演示：现状 / demo: as installed"],
            capture_output=True, text=True, timeout=60, check=False)
        if done.returncode not in (0, 2):  # 2: already there from an earlier run
            print(f"remote config for {gateway} not seeded: {done.stderr.strip()[:300]}")


def what_to_try_config(base: str) -> str:
    return (f"Remote config: {base}/#/config/gw-01 — raise the boiler's threshold with a reason; "
            "gw-01 runs it within seconds and reports its hash (history below it).")
