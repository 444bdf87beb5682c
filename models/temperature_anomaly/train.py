"""Train the temperature anomaly model on the simulator and export it to ONNX.

Training sees only the training room types and onset families (``rooms.TRAIN_ROOMS``,
``events.TRAIN_FAMILIES``) and seeds below the evaluation's. Positives are the minutes after an
onset once it has moved the reading by ``POSITIVE_MIN_C`` against the same scenario without the
event; negatives are quiet weeks and the minutes before onsets. The alarm threshold is then set
on separate quiet weeks: just above the highest score any of them held for two minutes running,
so those weeks raise no alarm at all; fridges get their own from the fridges' weeks.

``retrain`` adds a site's own history from InfluxDB: its minutes join the quiet training rows
(those the first fit finds alarming weighted up, like the simulator's) and its quiet weeks
join the calibration, so the threshold sits above anything that history held for two minutes.
Only use history without real incidents in it.

Usage (from ``models/``, or through ``scripts/train-temperature``):
    python -m temperature_anomaly.train simulate --out temperature_anomaly.onnx
    python -m temperature_anomaly.train retrain --influx-url http://127.0.0.1:8086 \
        --database gridsense --point gw-01.boiler --point gw-01.pump --days 28 --out site.onnx
Exit codes: 0 written, 2 bad input (names the point or URL), 1 anything else.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from gridsense_edge.rules.temperature_anomaly.features import FEATURES, HISTORY_MIN

from .events import FAMILIES, TRAIN_FAMILIES
from .features import rising_rows, series_features
from .history import HistoryError, minute_series
from .network import Network, export, fit
from .rooms import ROOMS, TRAIN_ROOMS
from .simulator import WEEK_MIN, scenario, simulate

POSITIVE_MIN_C = 0.5
THRESHOLD_MARGIN = 0.5  # log-odds above the calibration weeks' highest held score
NEGATIVE_SHARE = 0.25  # quiet minutes kept for training (they are many and alike)
CALIBRATION_SEED = 700_000
HARD_NEGATIVE_WEIGHT = 5.0


class TrainingError(ValueError):
    pass


def quiet_rows(room: str, weeks: int, seed: int) -> np.ndarray:
    batch = simulate(room, weeks, WEEK_MIN, seed)
    rows, _ = series_features(batch.values)
    return rows


def onset_rows(room: str, family: str, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows, labels: 1 after a visible onset, 0 before it, -1 in between: left out)."""
    event = scenario(room, family, count, seed)
    calm = simulate(room, count, event.values.shape[1], seed)
    rows, where = series_features(event.values)
    i, t = where[:, 0], where[:, 1]
    onset = event.onset[i]
    moved = np.nan_to_num(event.values[i, t] - calm.values[i, t], nan=0.0)
    label = np.where(t < onset, 0, np.where(moved >= POSITIVE_MIN_C, 1, -1))
    label[t > onset + FAMILIES[family].horizon_min] = -1
    return rows, label


def dataset(weeks: int, scenarios: int, rng: np.random.Generator,
            progress: Callable[[str], None]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, labels, all quiet rows: the pool hard negatives are mined from)."""
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    pool: list[np.ndarray] = []
    for k, room in enumerate(TRAIN_ROOMS):
        rows = quiet_rows(room, weeks, 1000 * k + 1)
        pool.append(rows)
        keep = rng.random(len(rows)) < NEGATIVE_SHARE
        xs.append(rows[keep])
        ys.append(np.zeros(int(keep.sum())))
        for j, family in enumerate(TRAIN_FAMILIES):
            if room in FAMILIES[family].rooms:
                rows, label = onset_rows(room, family, scenarios, 100_000 + 1000 * k + j)
                xs.append(rows[label >= 0])
                ys.append(label[label >= 0].astype(float))
        progress(f"data: {room} ({sum(len(x) for x in xs)} rows)")
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(pool)


def held_peak(scores: np.ndarray, sensors: np.ndarray, rising: np.ndarray) -> np.ndarray:
    """Per sensor, the highest score held over two scored minutes running, both warmer than
    an hour before (what the latch's one-minute hold lets through)."""
    scores = np.where(rising, scores, -np.inf)
    pair = np.minimum(scores[1:], scores[:-1])
    same = sensors[1:] == sensors[:-1]
    peaks = np.full(int(sensors.max()) + 1, -np.inf)
    np.maximum.at(peaks, sensors[1:][same], pair[same])
    return peaks


def calibrate(net: Network, weeks: int, site: tuple[np.ndarray, np.ndarray] | None
              ) -> tuple[float, float, dict[str, float]]:
    """(threshold, fridge threshold, peaks): a fridge's calm is its own, so fridge points
    (``kind: fridge`` in the rule) get a threshold from the fridges' quiet weeks alone."""
    peaks: dict[str, float] = {}
    for k, room in enumerate(TRAIN_ROOMS):
        batch = simulate(room, weeks, WEEK_MIN, CALIBRATION_SEED + 1000 * k)
        rows, where = series_features(batch.values)
        peaks[room] = float(held_peak(net.logits(rows), where[:, 0], rising_rows(rows)).max())
    if site is not None:  # the site's points may be either kind: both thresholds cover them
        peaks["site"] = float(held_peak(net.logits(site[0]), site[1][:, 0],
                                        rising_rows(site[0])).max())
    fridge = max(v for k, v in peaks.items() if k == "site" or ROOMS[k].fridge)
    return max(peaks.values()) + THRESHOLD_MARGIN, fridge + THRESHOLD_MARGIN, peaks


def site_rows(history: np.ndarray, points: list[str]) -> tuple[np.ndarray, np.ndarray]:
    rows, where = series_features(history)
    for i, point in enumerate(points):
        if not np.any(where[:, 0] == i):
            raise TrainingError(f"point {point!r}: less than a day of history without a "
                                f"gap over the rule's limit; nothing to learn from")
    return rows, where


def train_simulated(weeks: int, scenarios: int, calibration_weeks: int, seed: int,
                    progress: Callable[[str], None],
                    site: tuple[np.ndarray, np.ndarray] | None = None
                    ) -> tuple[Network, dict[str, object]]:
    rng = np.random.default_rng(seed)
    x, y, pool = dataset(weeks, scenarios, rng, progress)
    if site is not None:  # the site's quiet minutes: negatives, and mined like the rest
        x = np.concatenate([x, site[0]])
        y = np.concatenate([y, np.zeros(len(site[0]))])
        pool = np.concatenate([pool, site[0]])
    positives = float(y.sum())
    weight = np.where(y == 1, (len(y) - positives) / max(positives, 1.0), 1.0)
    started = time.monotonic()
    net = fit(x, y, weight, rng)
    # Quiet minutes the first fit found alarming (a door open to a hot day, a busy clinic hour
    # at the fridge) are what false alarms are made of: train again with them weighted up.
    hard = pool[net.logits(pool) > 0.0]
    x = np.concatenate([x, hard])
    y = np.concatenate([y, np.zeros(len(hard))])
    weight = np.concatenate([weight, np.full(len(hard), HARD_NEGATIVE_WEIGHT)])
    net = fit(x, y, weight, rng)
    progress(f"fit: {len(y)} rows, {int(positives)} positive, {len(hard)} hard negatives "
             f"({time.monotonic() - started:.0f} s)")
    threshold, fridge_threshold, peaks = calibrate(net, calibration_weeks, site)
    progress(f"threshold {threshold:.3f}, fridges {fridge_threshold:.3f} "
             f"(calibration peaks {peaks})")
    meta: dict[str, object] = {
        "features": list(FEATURES), "history_min": str(HISTORY_MIN),
        "threshold": repr(threshold), "fridge_threshold": repr(fridge_threshold),
        "score": "log-odds",
        "trained_on": {"rooms": list(TRAIN_ROOMS), "families": list(TRAIN_FAMILIES),
                       "quiet_weeks_per_room": weeks, "onsets_per_pair": scenarios,
                       "rows": len(y), "positives": int(positives)},
        "calibration_peaks": peaks,
        "site_rows": 0 if site is None else len(site[0]),
    }
    return net, meta


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sim = sub.add_parser("simulate", help="train on the thermal simulator")
    site = sub.add_parser("retrain", help="the simulator plus a site's own InfluxDB history")
    site.add_argument("--influx-url", required=True, help="e.g. http://127.0.0.1:8086")
    site.add_argument("--database", required=True, help="the server's InfluxDB database")
    site.add_argument("--point", action="append", required=True, help="repeat per point")
    site.add_argument("--days", type=float, default=28.0, help="history up to now")
    site.add_argument("--until", type=datetime.fromisoformat, help="end of the history (ISO)")
    for p in (sim, site):
        p.add_argument("--weeks", type=int, default=40, help="quiet sensor-weeks per room type")
        p.add_argument("--scenarios", type=int, default=150, help="onsets per (room, family)")
        p.add_argument("--calibration-weeks", type=int, default=300)
        p.add_argument("--seed", type=int, default=7)
        p.add_argument("--out", type=Path, required=True, help="ONNX file to write")
        p.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = parser.parse_args(argv)
    progress: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    history = None
    try:
        if args.command == "retrain":
            until = args.until or datetime.now(UTC)
            if until.tzinfo is None:
                raise TrainingError("--until needs a time zone (e.g. 2026-12-01T00:00:00+08:00)")
            minutes = minute_series(args.influx_url, args.database, args.point,
                                    until - timedelta(days=args.days), until)
            history = site_rows(minutes, args.point)
            progress(f"site: {len(args.point)} point(s), {len(history[0])} scored minutes")
    except (TrainingError, HistoryError) as exc:
        print(f"train: {exc}", file=sys.stderr)
        return 2
    net, meta = train_simulated(args.weeks, args.scenarios, args.calibration_weeks, args.seed,
                                progress, history)
    export(net, args.out, meta)
    summary = {"out": str(args.out), "threshold": round(float(str(meta["threshold"])), 4),
               "fridge_threshold": round(float(str(meta["fridge_threshold"])), 4),
               "site_rows": meta["site_rows"], **meta["trained_on"]}  # type: ignore[dict-item]
    print(json.dumps(summary) if args.json else
          " ".join(f"{k}={v}" for k, v in summary.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
