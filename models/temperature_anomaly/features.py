"""The model's features over whole series at once: what the edge rule computes reading by reading.

The definitions (and every constant) are the edge's (``gridsense_edge.rules.temperature_anomaly
.features``); this is the same arithmetic vectorised over minutes so training and evaluation
over thousands of sensor-weeks take seconds. ``tests/edge/thermal`` holds the two equal.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from gridsense_edge.rules.temperature_anomaly.features import (
    FEATURES,
    HISTORY_MIN,
    HOUR_MIN,
    LAGS_MIN,
    MAX_GAP_MIN,
    RECENT_MIN,
    STD_FLOOR_C,
    STUCK_MIN,
)


def rising_rows(rows: np.ndarray) -> np.ndarray:
    """Per row, the edge's ``rising`` (warmer than an hour before): only then may alarms start."""
    return rows[:, FEATURES.index("d60")] > 0


def _scored_minutes(row: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(minutes the rule scores, the forward-filled minute history) of one sensor."""
    finite = np.flatnonzero(np.isfinite(row))
    if len(finite) == 0:
        return finite, np.zeros_like(row)
    # a silence longer than MAX_GAP_MIN starts the history again
    restarts = np.concatenate([finite[:1], finite[1:][np.diff(finite) - 1 > MAX_GAP_MIN]])
    segment_start = restarts[np.searchsorted(restarts, finite, side="right") - 1]
    scored = finite[finite - segment_start >= HISTORY_MIN]
    filled_from = np.maximum.accumulate(np.where(np.isfinite(row), np.arange(len(row)), 0))
    history = row[filled_from]
    history[: finite[0]] = 0.0  # before the first reading: never inside a scored window
    return scored[~_after_stuck(history, scored)], history


def _after_stuck(history: np.ndarray, scored: np.ndarray) -> np.ndarray:
    """Per scored minute t: did a run of ``STUCK_MIN`` equal minutes end in [t-1-HOUR_MIN, t-1]
    (the edge's ``PointHistory`` does not score then)."""
    minutes = np.arange(len(history))
    same = np.concatenate([[False], history[1:] == history[:-1]])
    equal_run = np.convolve(same, np.ones(STUCK_MIN - 1), mode="full")[: len(history)]
    stuck_end = np.where(equal_run >= STUCK_MIN - 1, minutes, -HISTORY_MIN)
    last_stuck = np.maximum.accumulate(stuck_end)
    return last_stuck[scored - 1] >= scored - 1 - HOUR_MIN


def _window_mean(cum: np.ndarray, end: np.ndarray, length: int) -> np.ndarray:
    """Mean of history[end - length : end] from the prefix sums ``cum``."""
    return (cum[end] - cum[end - length]) / length


def series_features(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Features of every reading the rule would score: (rows (N, F) float32, (sensor, minute))."""
    rows: list[np.ndarray] = []
    where: list[np.ndarray] = []
    for i, row in enumerate(values):
        t, h = _scored_minutes(row)
        if len(t) == 0:
            continue
        cum = np.concatenate([[0.0], np.cumsum(h)])
        cum_sq = np.concatenate([[0.0], np.cumsum(h * h)])
        x = row[t]
        mean = _window_mean(cum, t, HISTORY_MIN)
        var = np.maximum(_window_mean(cum_sq, t, HISTORY_MIN) - mean * mean, 0.0)
        spread = np.sqrt(var) + STD_FLOOR_C
        d5, d15, d60 = (x - h[t - lag] for lag in LAGS_MIN)
        yesterday = _window_mean(cum, t - HISTORY_MIN + RECENT_MIN, RECENT_MIN)
        recent = _window_mean(cum, t, RECENT_MIN)
        hour = _window_mean(cum, t, HOUR_MIN)
        low15 = sliding_window_view(h, RECENT_MIN).min(axis=1)[t - RECENT_MIN]
        accel5 = d5 - (h[t - LAGS_MIN[0]] - h[t - 2 * LAGS_MIN[0]])
        rows.append(np.stack([x - mean, (x - mean) / spread, d5, d15, d60, d15 / spread,
                              d60 / spread, (x - yesterday) / spread, (recent - mean) / spread,
                              np.log(spread), accel5, (hour - mean) / spread,
                              (low15 - mean) / spread], axis=1))
        where.append(np.stack([np.full(len(t), i), t], axis=1))
    if not rows:
        return np.zeros((0, len(FEATURES)), np.float32), np.zeros((0, 2), np.int64)
    return np.concatenate(rows).astype(np.float32), np.concatenate(where)
