"""The model card's figures: train on 4 simulated weeks, judge the following week.

``normal``: that week's swipes as they happened (false alarms); ``random hour``: the same
people at the same doors at a uniformly random hour; ``01-04h``: at night. Deterministic.
Usage: ``python models/access_anomaly/evaluate.py [--json]``.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from traffic import simulate
from train import fit, local_hour, score


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    model = fit(simulate(28, 200, seed=7, start=datetime(2026, 10, 1, tzinfo=UTC)))
    week = list(simulate(7, 200, seed=7, start=datetime(2026, 10, 29, tzinfo=UTC)))
    rng = random.Random(1)
    cases = {
        "normal": [local_hour(s.ts, model.utc_offset_h) for s in week],
        "random_hour": [rng.randrange(24) for _ in week],
        "night_01_04h": [rng.choice((1, 2, 3, 4)) for _ in week],
    }
    rates = {name: round(sum(score(model, s.credential, s.door, h) > model.threshold
                             for s, h in zip(week, hours, strict=True)) / len(week), 4)
             for name, hours in cases.items()}
    result = {"threshold": round(model.threshold, 4), "train_swipes": model.swipes,
              "test_swipes": len(week), "alarm_rate": rates}
    print(json.dumps(result) if args.json else result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
