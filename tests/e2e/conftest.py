"""What the end-to-end tests share: the processes a test starts, stopped after it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

from gridsense_devtools.processes import Procs

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Procs]:
    running = Procs(tmp_path)
    yield running
    running.stop_all()


@pytest.fixture
def browser() -> Iterator[Browser]:
    """Debian's Chromium through Playwright (the web page's tests)."""
    with sync_playwright() as p:
        launched = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield launched
        launched.close()
