"""The temperature model's code lives in models/ (not an installed package): make it importable."""

from __future__ import annotations

import sys
from pathlib import Path

MODELS = Path(__file__).resolve().parents[3] / "models"
if str(MODELS) not in sys.path:
    sys.path.insert(0, str(MODELS))
