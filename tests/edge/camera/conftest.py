"""Session-wide synthetic detectors (one per output layout) for the camera tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from camera_support import LAYOUTS, build_model


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("models")
    return {layout: build_model(folder, layout) for layout in LAYOUTS}
