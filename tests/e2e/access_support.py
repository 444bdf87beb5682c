"""The OSDP reader simulator as its own process, driven through its stdin (what the demo does)."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from pathlib import Path
from typing import Any

from gridsense_devtools.processes import BIN, spawn, stop_process, wait_until


def write_key(path: Path) -> Path:
    path.write_text(os.urandom(16).hex())
    os.chmod(path, 0o600)
    return path


class ReaderSimulator:
    """``gridsense-edge simulate osdp``; collects the commands the control panel sends."""

    def __init__(self, link: Path, readers: dict[int, Path], log_path: Path) -> None:
        argv = [str(BIN / "gridsense-edge"), "simulate", "osdp", "--link", str(link), "--json"]
        for address, key in readers.items():
            argv += ["--reader", f"{address}:{key}"]
        self.popen = spawn(argv, log_path, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.lines: list[dict[str, Any]] = []
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        wait_until(lambda: any(m.get("event") == "ready" for m in self.lines), 20,
                   "the OSDP simulator's ready line")

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for raw in self.popen.stdout:
            try:
                self.lines.append(json.loads(raw))
            except ValueError:
                continue

    def act(self, **action: Any) -> None:
        assert self.popen.stdin is not None
        self.popen.stdin.write((json.dumps(action) + "\n").encode())
        self.popen.stdin.flush()

    def commands(self, name: str, reader: int = 1) -> list[dict[str, Any]]:
        return [m for m in self.lines if m.get("event") == "command"
                and m.get("command") == name and m.get("reader") == reader]

    def stop(self) -> None:
        stop_process(self.popen, timeout=10)
