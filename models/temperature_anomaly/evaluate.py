"""Evaluation harness: how early and how noisy is each temperature detector, on held-out scenarios.

Held out from the model's training by whole room types (``rooms.HELD_OUT_ROOMS``) and whole
onset families (``events.HELD_OUT_FAMILIES``), and by seed: every scenario judged here is a
held-out room, a held-out family, or both. False alarms come from quiet weeks of every room type
(held-out and training types, on seeds training never saw). Detection delay is minutes from the
onset to the first alarm at or after it; a detection later than the family's horizon is a miss.
Combinations alarm when any member does; their false alarms are the members' summed (each rule
raises its own incident). Deterministic for its arguments.

Usage: ``scripts/evaluate [--model temperature_anomaly.onnx] [--json] [--markdown]``
(or ``python -m temperature_anomaly.evaluate`` with ``models/`` on the path).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .detectors import Alarms, drive_rules, rate_rule, threshold_rule
from .events import FAMILIES, HELD_OUT_FAMILIES
from .rooms import HELD_OUT_ROOMS, ROOMS
from .simulator import WEEK_MIN, Batch, scenario, simulate

TEST_SEED = 900_000  # training uses seeds below this
CHUNK = 50  # sensors simulated at once: bounds the memory of a week's features
RULE_LEAD_MIN = 30  # event scenarios feed the rules from this long before the onset

# (name, members): members alarm in any of them
COMBINATIONS = {
    "threshold": ("threshold",),
    "rate": ("rate",),
    "model": ("model",),
    "threshold+rate": ("threshold", "rate"),
    "threshold+model": ("threshold", "model"),
    "threshold+rate+model": ("threshold", "rate", "model"),
}

# model_alarms(batch) -> per sensor, the minutes the model raised an alarm
ModelAlarms = Callable[[Batch], Alarms]


def judged_pairs() -> list[tuple[str, str]]:
    """Every (room, family) that happens and is held out by room, by family, or both."""
    return [(room, family) for family, fam in FAMILIES.items() for room in fam.rooms
            if room in HELD_OUT_ROOMS or family in HELD_OUT_FAMILIES]


def _alarms(batch: Batch, model: ModelAlarms | None,
            spans: list[tuple[int, int]] | None = None) -> dict[str, Alarms]:
    factories = {"threshold": threshold_rule(batch.room)}
    rate = rate_rule(batch.room)
    if rate is not None:
        factories["rate"] = rate
    found = drive_rules(factories, batch, spans)
    if model is not None:
        found["model"] = model(batch)
    return found


def _members_present(found: dict[str, Alarms], members: tuple[str, ...]) -> list[str]:
    """All members, or none when one is not set for this room (no rate rule on a fridge)."""
    return list(members) if all(m in found for m in members) else []


@dataclass
class Tally:
    """False alarms and sensor-weeks, or delays and misses, per combination."""

    sensor_weeks: float = 0.0
    false_alarms: dict[str, int] | None = None
    delays: dict[str, list[float]] | None = None  # NaN = missed

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {}
        if self.false_alarms is not None:
            out["sensor_weeks"] = round(self.sensor_weeks, 1)
            out["false_alarms"] = self.false_alarms
            out["per_sensor_week"] = {k: round(v / self.sensor_weeks, 4)
                                      for k, v in self.false_alarms.items()}
        if self.delays is not None:
            out.update({k: summarise(v) for k, v in self.delays.items()})
        return out


def summarise(delays: list[float]) -> dict[str, float | int | None]:
    arr = np.array(delays, dtype=float)
    hit = arr[np.isfinite(arr)]
    return {"n": len(arr), "recall": round(float(len(hit) / len(arr)), 3) if len(arr) else None,
            "median_min": float(np.median(hit)) if len(hit) else None,
            "p90_min": float(np.percentile(hit, 90)) if len(hit) else None}


def false_alarms(room: str, weeks: int, model: ModelAlarms | None, seed: int) -> Tally:
    tally = Tally(false_alarms={})
    for first in range(0, weeks, CHUNK):
        batch = simulate(room, min(CHUNK, weeks - first), WEEK_MIN, seed + first)
        found = _alarms(batch, model)
        tally.sensor_weeks += len(batch.values)
        for combo, members in COMBINATIONS.items():
            present = _members_present(found, members)
            if not present:
                continue
            count = sum(len(a) for m in present for a in found[m])
            tally.false_alarms[combo] = tally.false_alarms.get(combo, 0) + count
    return tally


def detections(room: str, family: str, count: int, model: ModelAlarms | None,
               seed: int) -> Tally:
    tally = Tally(delays={})
    batch = scenario(room, family, count, seed)
    horizon = batch.horizon_min
    spans = [(max(0, int(o) - RULE_LEAD_MIN), int(o) + horizon + 1) for o in batch.onset]
    found = _alarms(batch, model, spans)
    for combo, members in COMBINATIONS.items():
        present = _members_present(found, members)
        if not present:
            continue
        delays: list[float] = []
        for i, onset in enumerate(batch.onset):
            after = [a[i][(a[i] >= onset) & (a[i] <= onset + horizon)] for a in
                     (found[m] for m in present)]
            first = min((int(a[0]) for a in after if len(a)), default=None)
            delays.append(float(first - onset) if first is not None else float("nan"))
        tally.delays[combo] = delays
    return tally


def evaluate(model: ModelAlarms | None, weeks_per_room: int, per_pair: int,
             progress: Callable[[str], None] = lambda _: None) -> dict[str, object]:
    started = time.monotonic()
    quiet: dict[str, Tally] = {}
    for index, room in enumerate(ROOMS):
        quiet[room] = false_alarms(room, weeks_per_room, model, TEST_SEED + 1000 * index)
        progress(f"quiet weeks: {room} ({time.monotonic() - started:.0f} s)")
    by_family: dict[str, Tally] = {}
    for index, (room, family) in enumerate(judged_pairs()):
        tally = detections(room, family, per_pair, model, TEST_SEED + 500_000 + 1000 * index)
        merged = by_family.setdefault(family, Tally(delays={}))
        assert merged.delays is not None and tally.delays is not None
        for combo, delays in tally.delays.items():
            merged.delays.setdefault(combo, []).extend(delays)
        progress(f"onsets: {family} in {room} ({time.monotonic() - started:.0f} s)")
    groups = {"rooms": [r for r in ROOMS if not ROOMS[r].fridge],
              "fridges": [r for r in ROOMS if ROOMS[r].fridge]}
    grouped: dict[str, Tally] = {}
    for group, rooms in groups.items():
        total = Tally(false_alarms={})
        for room in rooms:
            assert total.false_alarms is not None and quiet[room].false_alarms is not None
            total.sensor_weeks += quiet[room].sensor_weeks
            for combo, n in quiet[room].false_alarms.items():
                total.false_alarms[combo] = total.false_alarms.get(combo, 0) + n
        grouped[group] = total
    return {
        "held_out_rooms": list(HELD_OUT_ROOMS), "held_out_families": list(HELD_OUT_FAMILIES),
        "false_alarms": {k: v.as_dict() for k, v in grouped.items()},
        "false_alarms_by_room": {k: v.as_dict() for k, v in quiet.items()},
        "detection": {k: v.as_dict() for k, v in by_family.items()},
        "pairs": [f"{family}@{room}" for room, family in judged_pairs()],
        "seconds": round(time.monotonic() - started, 1),
    }


def markdown(result: dict[str, object]) -> str:
    """The tables for docs/benchmarks.md."""
    detection: dict[str, dict[str, dict[str, object]]] = result["detection"]  # type: ignore[assignment]
    combos = [c for c in COMBINATIONS if any(c in d for d in detection.values())]
    lines = ["| onset family (held-out rooms · families) | " + " | ".join(combos) + " |",
             "|---|" + "---|" * len(combos)]
    for family, per in detection.items():
        cells = []
        for combo in combos:
            s = per.get(combo)
            if s is None:
                cells.append("—")
                continue
            med, p90 = s["median_min"], s["p90_min"]
            delay = f"{med:g} / {p90:g} min" if med is not None else "no detection"
            cells.append(f"{s['recall']:.0%} · {delay}")
        n = next(iter(per.values()))["n"]
        lines.append(f"| {family} (n={n}) | " + " | ".join(cells) + " |")
    lines += ["", "| false alarms per sensor-week | sensor-weeks | " + " | ".join(combos) + " |",
              "|---|---|" + "---|" * len(combos)]
    quiet: dict[str, dict[str, object]] = result["false_alarms"]  # type: ignore[assignment]
    for group, tally in quiet.items():
        rates: dict[str, float] = tally["per_sensor_week"]  # type: ignore[assignment]
        counts: dict[str, int] = tally["false_alarms"]  # type: ignore[assignment]
        cells = [f"{rates[c]:.3f} ({counts[c]})" if c in rates else "—" for c in combos]
        lines.append(f"| {group} | {tally['sensor_weeks']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, help="the ONNX model to judge beside the rules")
    parser.add_argument("--weeks-per-room", type=int, default=143,
                        help="quiet sensor-weeks per room type (7 types: 143 -> 1,001)")
    parser.add_argument("--per-pair", type=int, default=60,
                        help="onset scenarios per (room, family) pair")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--markdown", action="store_true", help="print the tables as Markdown")
    args = parser.parse_args(argv)
    model: ModelAlarms | None = None
    if args.model is not None:
        from .model_detector import ModelDetector

        try:
            model = ModelDetector(args.model).alarms
        except (OSError, ValueError) as exc:
            print(f"evaluate: {args.model}: {exc}", file=sys.stderr)
            return 2
    result = evaluate(model, args.weeks_per_room, args.per_pair,
                      progress=lambda line: print(line, file=sys.stderr, flush=True))
    if args.json:
        print(json.dumps(result))
    if args.markdown or not args.json:
        print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
