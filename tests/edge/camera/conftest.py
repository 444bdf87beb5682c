"""Session-wide synthetic detectors (one per output layout) for the camera tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from gridsense_devtools.detectors.synthetic import LAYOUTS, model_in


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("models")
    return {layout: model_in(folder, layout) for layout in LAYOUTS}
