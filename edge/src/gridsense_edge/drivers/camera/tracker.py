"""Tracking across frames: stable ids, score history, motion-predicted optimal matching."""

from __future__ import annotations

import math
import statistics
from collections import deque
from dataclasses import dataclass, field

from .assignment import assign
from .geometry import Box, Detection, centre

HISTORY = 64  # boxes kept per track (person_down reads its shape over time)
SCORES = 9
MAX_PREDICT_S = 2.0  # do not extrapolate a position further than this (it has probably stopped)
GATE = 16.0  # cost at which a pair is impossible (a 4-sigma miss, or a size off by ~2x)
REID_GATE = 9.0  # a lost track must be found closer to where it was heading (3 sigma)
# Noise in units of the object's size (sqrt(w*h)), so a near person and a far one behave alike:
MEASURE_STD = 0.1  # a detector's box centre jitters by up to ~10 % of the box
ACCEL_STD = 0.3  # sizes/s²: a walker speeding up, slowing, turning (tuned on bench seeds 100–104)
START_SPEED_STD = 0.5  # sizes/s: a new object's speed is unknown; people walk ~1 size/s
SIZE_STD = 0.2  # log-ratio: a box's scale (sqrt of its area) from one frame to the next
SHAPE_STD = 1.0  # log-ratio of width/height: loose, a fall may turn it from 0.4 to 3


@dataclass(slots=True)
class _Axis:
    """Constant-velocity Kalman filter on one coordinate (position, velocity, covariance)."""

    p: float
    v: float = 0.0
    pp: float = 0.0  # var(p)
    pv: float = 0.0  # cov(p, v)
    vv: float = 0.0  # var(v)

    def predict(self, dt: float, q: float) -> _Axis:
        """The state ``dt`` later under white-noise acceleration of spectral density ``q``."""
        moved = min(dt, MAX_PREDICT_S)
        return _Axis(self.p + self.v * moved, self.v,
                     self.pp + 2 * dt * self.pv + dt * dt * self.vv + q * dt ** 3 / 3,
                     self.pv + dt * self.vv + q * dt * dt / 2,
                     self.vv + q * dt)

    def correct(self, z: float, r: float) -> None:
        s = self.pp + r
        gain_p, gain_v = self.pp / s, self.pv / s
        residual = z - self.p
        self.p += gain_p * residual
        self.v += gain_v * residual
        self.vv -= gain_v * self.pv
        self.pv *= 1 - gain_p
        self.pp *= 1 - gain_p


@dataclass
class Track:
    id: int
    label: str
    box: Box  # the last detected box (rules, snapshots and re-checks use what was seen)
    first_t: float
    last_t: float
    scores: deque[float] = field(default_factory=lambda: deque(maxlen=SCORES))
    history: deque[tuple[float, Box]] = field(default_factory=lambda: deque(maxlen=HISTORY))
    hits: int = 0
    misses: int = 0  # consecutive checks that did not find it
    anchor: Box | None = None  # where it was when it last moved
    velocity: tuple[float, float] = (0.0, 0.0)  # px/s of the box centre, filtered
    moved_t: float = 0.0
    last_checked: int = 0  # frame number of the last detection run that covered it
    _x: _Axis = field(default_factory=lambda: _Axis(0.0), repr=False)
    _y: _Axis = field(default_factory=lambda: _Axis(0.0), repr=False)
    _size: tuple[float, float] = (1.0, 1.0)  # smoothed width, height

    @property
    def median_score(self) -> float:
        return statistics.median(self.scores) if self.scores else 0.0

    def stationary_s(self, t: float) -> float:
        return t - self.moved_t

    def predicted(self, t: float) -> Box:
        """Where the filter expects the object at ``t`` (matching uses this)."""
        x, y = self._predict(t)
        w, h = self._size
        return (x.p - w / 2, y.p - h / 2, x.p + w / 2, y.p + h / 2)

    def _scale(self) -> float:
        return max(math.sqrt(self._size[0] * self._size[1]), 4.0)

    def _predict(self, t: float) -> tuple[_Axis, _Axis]:
        dt = max(t - self.last_t, 0.0)
        q = (ACCEL_STD * self._scale()) ** 2
        return self._x.predict(dt, q), self._y.predict(dt, q)

    def _cost(self, detection: Detection, t: float, gate: float) -> float:
        """Squared standard deviations between the prediction and ``detection``, plus how unsure
        the prediction is; ``inf`` when either the place or the size is beyond ``gate``."""
        if detection.label != self.label:
            return math.inf
        x, y = self._predict(t)
        r = (MEASURE_STD * self._scale()) ** 2
        cx, cy = centre(detection.box)
        sx, sy = x.pp + r, y.pp + r
        distance = (cx - x.p) ** 2 / sx + (cy - y.p) ** 2 / sy
        # Negative log-likelihood, not distance alone: an unsure track (new, or missed for a
        # while) would otherwise claim every detection within its wide gate from a sure one.
        spread = math.log(sx * sy / (r * r))
        w, h = _wh(detection.box)
        tw, th = self._size
        # Scale and shape apart: a box's area barely changes from frame to frame, its shape may
        # (a person falling turns tall into wide without becoming someone else).
        scale = math.log(w * h / (tw * th)) / 2
        shape = math.log(w * th / (h * tw))
        size = (scale / SIZE_STD) ** 2 + (shape / SHAPE_STD) ** 2
        if distance > gate or size > gate:
            return math.inf
        return distance + size + spread

    def _update(self, detection: Detection, t: float, frame: int) -> None:
        cx, cy = centre(detection.box)
        w, h = _wh(detection.box)
        if self.hits == 0:
            self._size = (w, h)
            scale = self._scale()
            start = (START_SPEED_STD * scale) ** 2
            r = (MEASURE_STD * scale) ** 2
            self._x, self._y = _Axis(cx, 0.0, r, 0.0, start), _Axis(cy, 0.0, r, 0.0, start)
        else:
            self._x, self._y = self._predict(t)
            r = (MEASURE_STD * self._scale()) ** 2
            self._x.correct(cx, r)
            self._y.correct(cy, r)
            self._size = (0.7 * self._size[0] + 0.3 * w, 0.7 * self._size[1] + 0.3 * h)
        self.velocity = (self._x.v, self._y.v)
        self.box = detection.box
        self.last_t = t
        self.last_checked = frame
        self.scores.append(detection.score)
        self.history.append((t, detection.box))
        self.hits += 1
        self.misses = 0
        anchor = self.anchor
        if anchor is None or _moved(anchor, detection.box):
            self.anchor, self.moved_t = detection.box, t


def _wh(box: Box) -> tuple[float, float]:
    return max(box[2] - box[0], 1.0), max(box[3] - box[1], 1.0)


def _moved(a: Box, b: Box) -> bool:
    (ax, ay), (bx, by) = centre(a), centre(b)
    size = max(a[2] - a[0], a[3] - a[1], 1.0)
    return math.hypot(ax - bx, ay - by) > max(3.0, 0.08 * size)


class Tracker:
    def __init__(self, max_misses: int = 3, max_age_s: float = 60.0, max_tracks: int = 256,
                 reid_s: float = 3.0) -> None:
        self.max_misses = max_misses
        self.max_age_s = max_age_s  # not seen for this long: gone, checked or not
        self.max_tracks = max_tracks
        self.reid_s = reid_s  # how long a lost track may still take its id back
        self.tracks: dict[int, Track] = {}
        self.lost: dict[int, Track] = {}  # dropped from ``tracks``, kept for re-identification
        self._next_id = 1
        self.frame = 0

    def update(self, detections: list[Detection], t: float, checked: list[Box]) -> list[Track]:
        """Fold one frame's detections in; ``checked`` are the areas the detector looked at."""
        self.frame += 1
        active = list(self.tracks.values())
        matched = _match(active, detections, t, GATE)
        for i, j in matched:
            active[i]._update(detections[j], t, self.frame)
        free = [j for j in range(len(detections)) if j not in {j for _, j in matched}]
        self._forget_lost(t)
        if free and self.lost:
            lost = list(self.lost.values())
            found = _match(lost, [detections[j] for j in free], t, REID_GATE)
            for i, k in found:
                track = lost[i]
                del self.lost[track.id]
                track._update(detections[free[k]], t, self.frame)
                self.tracks[track.id] = track
            free = [j for k, j in enumerate(free) if k not in {k for _, k in found}]
        for j in free:
            if len(self.tracks) >= self.max_tracks:
                break
            track = Track(self._next_id, detections[j].label, detections[j].box, t, t, moved_t=t)
            track._update(detections[j], t, self.frame)
            self.tracks[track.id] = track
            self._next_id += 1
        for track in list(self.tracks.values()):
            if track.last_t == t:
                continue
            if any(_inside(track.box, area) for area in checked):
                track.misses += 1
                track.last_checked = self.frame
            if track.misses > self.max_misses or t - track.last_t > self.max_age_s:
                del self.tracks[track.id]
                if track.hits >= 2:  # a one-frame track was most likely a false detection
                    self.lost[track.id] = track
        return list(self.tracks.values())

    def _forget_lost(self, t: float) -> None:
        for track in list(self.lost.values()):
            if t - track.last_t > self.reid_s or len(self.lost) > self.max_tracks:
                del self.lost[track.id]

    def due_for_check(self, every: int) -> list[Track]:
        """Tracks not looked at for ``every`` frames (a stationary object is not in any motion
        region, yet must be confirmed now and then — and dropped when it left unseen)."""
        upcoming = self.frame + 1  # called before the frame's update
        return [t for t in self.tracks.values() if upcoming - t.last_checked >= every]


def _match(tracks: list[Track], detections: list[Detection], t: float, gate: float
           ) -> list[tuple[int, int]]:
    if not tracks or not detections:
        return []
    return assign([[track._cost(d, t, gate) for d in detections] for track in tracks], math.inf)


def _inside(box: Box, area: Box) -> bool:
    cx, cy = centre(box)
    return area[0] <= cx <= area[2] and area[1] <= cy <= area[3]
