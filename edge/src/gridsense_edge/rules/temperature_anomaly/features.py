"""What the temperature model sees: a point's reading against that point's own recent history.

The rule keeps, per point, one value a minute (the mean of the minute's readings; a minute
without readings repeats the one before) for the last 24 hours, with running sums for the
baseline's mean and spread. Every feature is relative to that baseline, so one fixed model
serves a boiler room at 30 °C and a fridge at 5 °C. The training code computes the same
features over whole simulated series at once (``models/temperature_anomaly/features.py``); a
test holds the two to the same numbers.
"""

from __future__ import annotations

import math
from array import array

HISTORY_MIN = 1440  # a day of minutes: the baseline, and the silence before the model speaks
MAX_GAP_MIN = 180  # a longer silence starts the history again (the room may have changed)
STD_FLOOR_C = 0.1  # a flat history (a stuck probe, a fridge in a buffer) is not infinitely calm
RECENT_MIN = 15  # "recent" and "same time yesterday" average this many minutes
LAGS_MIN = (5, 15, 60)
HOUR_MIN = 60
# A probe that repeats one value for this many minutes is stuck (or its minutes were filled
# over a dropout): what comes after it jumps against stale values, so the model does not score
# while such a run lies within the last hour (its lags reach an hour back).
STUCK_MIN = 30
FEATURES = ("d_base", "z_base", "d5", "d15", "d60", "z15", "z60", "z_yday", "z_recent",
            "log_spread", "accel5", "z_hour", "z_low15")


def feature_row(x: float, mean: float, spread: float, lagged: tuple[float, float, float],
                ten_ago: float, yesterday: float, recent: tuple[float, float, float]
                ) -> list[float]:
    """The features in ``FEATURES`` order. ``spread`` is the baseline's std plus the floor;
    ``recent`` = (mean of the last 15 minutes, mean of the last hour, lowest of the last 15).

    A fire accelerates (``accel5``), a door opened on a hot day slows down as the room fills
    with outside air; a failing fridge stays up for an hour (``z_hour``), a door opening lifts
    it for minutes only (``z_low15``: even the coolest of the last 15 minutes is warm)."""
    d5, d15, d60 = (x - v for v in lagged)
    recent15, hour, low15 = recent
    return [x - mean, (x - mean) / spread, d5, d15, d60, d15 / spread, d60 / spread,
            (x - yesterday) / spread, (recent15 - mean) / spread, math.log(spread),
            d5 - (lagged[0] - ten_ago), (hour - mean) / spread, (low15 - mean) / spread]


def rising(row: list[float]) -> bool:
    """Is the reading warmer than an hour before (``d60`` > 0)? Only then may an alarm start."""
    return row[FEATURES.index("d60")] > 0


class PointHistory:
    """One point's minute history in a fixed ring (``HISTORY_MIN`` doubles, ~12 kB)."""

    __slots__ = ("_count", "_head", "_minute", "_minute_n", "_minute_sum", "_ring", "_run",
                 "_since_stuck", "_sum", "_sum_sq")

    def __init__(self) -> None:
        self._ring = array("d", bytes(8 * HISTORY_MIN))
        self._head = 0  # where the next closed minute goes
        self._count = 0
        self._sum = 0.0
        self._sum_sq = 0.0
        self._minute: int | None = None  # the open minute (epoch minutes) and its readings
        self._minute_sum = 0.0
        self._minute_n = 0
        self._run = 0  # closed minutes in a row with the last one's value
        self._since_stuck = HOUR_MIN + 1  # closed minutes since one ended a stuck run

    @property
    def ready(self) -> bool:
        return self._count == HISTORY_MIN

    @property
    def after_stuck(self) -> bool:
        """A stuck run (``STUCK_MIN`` equal minutes) ended within the last ``HOUR_MIN``."""
        return self._since_stuck <= HOUR_MIN

    def add(self, minute: int, value: float) -> bool:
        """Take a reading; True when it is the first of a new minute (time to score it)."""
        if self._minute is None or minute > self._minute:
            if self._minute is not None:
                closed = self._minute_sum / self._minute_n
                gap = minute - self._minute - 1
                if gap > MAX_GAP_MIN:
                    self.reset()
                else:
                    for _ in range(gap + 1):
                        self._push(closed)
            self._minute, self._minute_sum, self._minute_n = minute, value, 1
            return True
        self._minute_sum += value
        self._minute_n += 1
        return False

    def saved(self) -> tuple[int, list[float]] | None:
        """(the open minute, the closed minutes' values oldest first and then the open minute's
        mean so far), for the history store; None before the first reading."""
        if self._minute is None:
            return None
        values = [self._ago(k) for k in range(self._count, 0, -1)]
        values.append(self._minute_sum / self._minute_n)
        return self._minute, values

    @classmethod
    def restored(cls, minute: int, values: list[float]) -> PointHistory:
        """The history ``saved`` gave: readings after a restart continue the open minute or
        close it, and a silence longer than ``MAX_GAP_MIN`` since starts again, like any gap."""
        history = cls()
        for value in values[:-1][-HISTORY_MIN:]:
            history._push(value)
        if values:
            history._minute, history._minute_sum, history._minute_n = minute, values[-1], 1
        return history

    def reset(self) -> None:
        self._head = self._count = self._run = 0
        self._sum = self._sum_sq = 0.0
        self._since_stuck = HOUR_MIN + 1

    def _push(self, value: float) -> None:
        same = self._count > 0 and self._ago(1) == value
        self._run = min(self._run + 1, STUCK_MIN) if same else 1
        self._since_stuck = 0 if self._run >= STUCK_MIN else min(self._since_stuck + 1,
                                                                  HOUR_MIN + 1)
        if self._count == HISTORY_MIN:
            old = self._ring[self._head]
            self._sum -= old
            self._sum_sq -= old * old
        else:
            self._count += 1
        self._ring[self._head] = value
        self._sum += value
        self._sum_sq += value * value
        self._head = (self._head + 1) % HISTORY_MIN
        if self._head == 0:  # once a day: sums again from the ring, so rounding never drifts
            self._sum = math.fsum(self._ring)
            self._sum_sq = math.fsum(v * v for v in self._ring)

    def _ago(self, minutes: int) -> float:
        """The closed minute ``minutes`` before the open one (1 = the last closed minute)."""
        return self._ring[(self._head - minutes) % HISTORY_MIN]

    def baseline(self) -> tuple[float, float]:
        """(mean, spread) of the last 24 h; spread = std + ``STD_FLOOR_C``."""
        mean = self._sum / HISTORY_MIN
        var = max(self._sum_sq / HISTORY_MIN - mean * mean, 0.0)
        return mean, math.sqrt(var) + STD_FLOOR_C

    def features(self, x: float) -> list[float] | None:
        """Features of reading ``x`` against the history; None until a full day is held, and
        while a stuck run (``STUCK_MIN`` equal minutes) ended within the last ``HOUR_MIN``."""
        if not self.ready or self.after_stuck:
            return None
        mean, spread = self.baseline()
        lagged = (self._ago(LAGS_MIN[0]), self._ago(LAGS_MIN[1]), self._ago(LAGS_MIN[2]))
        # the oldest minutes in the ring are the same time yesterday
        yesterday = sum(self._ago(HISTORY_MIN - k) for k in range(RECENT_MIN)) / RECENT_MIN
        last = [self._ago(k) for k in range(1, HOUR_MIN + 1)]
        recent = (sum(last[:RECENT_MIN]) / RECENT_MIN, sum(last) / HOUR_MIN,
                  min(last[:RECENT_MIN]))
        return feature_row(x, mean, spread, lagged, self._ago(2 * LAGS_MIN[0]), yesterday, recent)
