"""Progress lines for a person watching a scan (stderr), kept apart from the result (stdout)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

Progress = Callable[[str], None]


def printer(stream: TextIO | None = None) -> Progress:
    started = time.monotonic()

    def say(line: str) -> None:
        out = stream or sys.stderr
        print(f"[{time.monotonic() - started:5.1f}s] {line}", file=out, flush=True)

    return say


def quiet(_: str) -> None:
    return None
