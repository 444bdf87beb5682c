"""The demo's e-bike charging shed, watched by the temperature model as well as the thresholds.

A model speaks only over a point's full 24-hour baseline, and a demo has no yesterday: the
shed's gateway starts with a quiet day already in its history folder (what the rule keeps on
disk across restarts anyway), so the model judges from the first minute. The shed's sensor
(gw-01, slave 3, in demo_data/gw-01.scenario.yaml) holds 26 °C, then a battery starts to cook
a minute in: 1.5 °C a minute. The model raises ``temperature_anomaly`` about 11 minutes in, at
about 41 °C; the 60 °C threshold raises ``over_temperature`` about 24 minutes in.
"""

from __future__ import annotations

import math
import random
from datetime import datetime
from pathlib import Path

from gridsense_edge.rules.temperature_anomaly.features import HISTORY_MIN, PointHistory
from gridsense_edge.rules.temperature_anomaly.history_store import HistoryStore

SHED = "gw-01.ebike-shed"
SHED_SLAVE = 3
BASE_C = 26.0  # the shed's temperature in the scenario before the battery heats
DAILY_SWING_C = 1.0  # yesterday's gentle day-night cycle around it
NOISE_C = 0.1
MODEL = Path(__file__).resolve().parent.parent / "models" / "temperature_anomaly" / (
    "temperature_anomaly.onnx")
HISTORY_FOLDER = "temperature_history"  # the rule's default under the gateway's state_dir


def anomaly_rule() -> dict[str, object]:
    """What an installer writes under ``rules:`` for the shed."""
    return {"type": "temperature_anomaly", "points": [SHED], "model": str(MODEL),
            "kind": "room", "severity": "critical"}


def quiet_day(now: datetime, seed: int = 7) -> PointHistory:
    """A day of minutes ending now: a full day-night cycle that ends where it began (so the
    same time yesterday equals now), with sensor noise."""
    rng = random.Random(seed)
    values = [BASE_C + DAILY_SWING_C * math.sin(2 * math.pi * k / HISTORY_MIN)
              + rng.gauss(0, NOISE_C) for k in range(HISTORY_MIN + 1)]
    return PointHistory.restored(int(now.timestamp() // 60), values)


def seed_history(state_dir: Path, now: datetime) -> Path:
    """Write the shed's quiet day where the gateway's rule will look for it."""
    store = HistoryStore(state_dir / HISTORY_FOLDER)
    store.save(SHED, quiet_day(now))
    return store.directory / f"{SHED}.history"


WHAT_TO_TRY = f"""The e-bike charging shed ({SHED}, 3号楼电动车充电棚) warms 1.5 °C a minute from a
minute in: the temperature model raises temperature_anomaly about 11 minutes in (~41 °C), well
before over_temperature at 60 °C (~24 minutes in). Its baseline day was written into
gw-01's state folder at start, as the gateway itself keeps it across restarts."""
