"""Tracking across frames: IoU matching with a centroid fallback, stable ids, score history.

Not norfair: it pins numpy<2 and pulls SciPy, so it cannot be installed beside this project.
Measured against it on the same synthetic crossing tracks (scripts/bench_tracker.py,
docs/benchmarks.md): about 20 % more ID switches than norfair tuned for the scene, about a
sixth of its time per frame, nothing to install.

Detections match tracks of the same label greedily by IoU against each track's
constant-velocity prediction (which keeps ids through crossings); a fast mover at a low frame
rate may not overlap its last box, so a close centre (within half the box's diagonal) still
matches. Motion gating means an object outside every region looked at this frame was not
*missed*: only tracks inside a checked region age. An object *counts* once the median of its
recent scores passes the threshold, so one lucky frame does not raise an alarm.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from dataclasses import dataclass, field

from .geometry import Box, Detection, centre, iou

HISTORY = 64  # boxes kept per track (person_down reads its shape over time)
SCORES = 9


@dataclass
class Track:
    id: int
    label: str
    box: Box
    first_t: float
    last_t: float
    scores: deque[float] = field(default_factory=lambda: deque(maxlen=SCORES))
    history: deque[tuple[float, Box]] = field(default_factory=lambda: deque(maxlen=HISTORY))
    hits: int = 0
    misses: int = 0  # consecutive checks that did not find it
    anchor: Box | None = None  # where it was when it last moved
    velocity: tuple[float, float] = (0.0, 0.0)  # px/s of the box centre, smoothed
    moved_t: float = 0.0
    last_checked: int = 0  # frame number of the last detection run that covered it

    @property
    def median_score(self) -> float:
        return statistics.median(self.scores) if self.scores else 0.0

    def stationary_s(self, t: float) -> float:
        return t - self.moved_t

    def predicted(self, t: float) -> Box:
        """Where a constant-velocity object would be at ``t`` (matching uses this)."""
        dt = min(t - self.last_t, 2.0)  # do not extrapolate a lost object far
        dx, dy = self.velocity[0] * dt, self.velocity[1] * dt
        x1, y1, x2, y2 = self.box
        return (x1 + dx, y1 + dy, x2 + dx, y2 + dy)

    def _update(self, detection: Detection, t: float, frame: int) -> None:
        dt = t - self.last_t
        if self.hits and dt > 0:
            (ox, oy), (nx, ny) = centre(self.box), centre(detection.box)
            vx, vy = (nx - ox) / dt, (ny - oy) / dt
            self.velocity = (0.5 * self.velocity[0] + 0.5 * vx, 0.5 * self.velocity[1] + 0.5 * vy)
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


def _moved(a: Box, b: Box) -> bool:
    (ax, ay), (bx, by) = centre(a), centre(b)
    size = max(a[2] - a[0], a[3] - a[1], 1.0)
    return math.hypot(ax - bx, ay - by) > max(3.0, 0.08 * size)


def _similarity(track: Track, detection: Detection, t: float) -> float:
    if track.label != detection.label:
        return 0.0
    box = track.predicted(t)
    overlap = iou(box, detection.box)
    if overlap >= 0.1:
        return overlap
    (tx, ty), (dx, dy) = centre(box), centre(detection.box)
    diagonal = math.hypot(box[2] - box[0], box[3] - box[1])
    distance = math.hypot(tx - dx, ty - dy)
    return 0.09 * (1 - distance / (diagonal / 2)) if distance < diagonal / 2 else 0.0


class Tracker:
    def __init__(self, max_misses: int = 3, max_age_s: float = 60.0, max_tracks: int = 256
                 ) -> None:
        self.max_misses = max_misses
        self.max_age_s = max_age_s  # not seen for this long: gone, checked or not
        self.max_tracks = max_tracks
        self.tracks: dict[int, Track] = {}
        self._next_id = 1
        self.frame = 0

    def update(self, detections: list[Detection], t: float, checked: list[Box]) -> list[Track]:
        """Fold one frame's detections in; ``checked`` are the areas the detector looked at."""
        self.frame += 1
        pairs = sorted(
            ((_similarity(track, d, t), track.id, j) for track in self.tracks.values()
             for j, d in enumerate(detections)),
            reverse=True,
        )
        used_tracks: set[int] = set()
        used_detections: set[int] = set()
        for similarity, track_id, j in pairs:
            if similarity <= 0:
                break
            if track_id in used_tracks or j in used_detections:
                continue
            used_tracks.add(track_id)
            used_detections.add(j)
            self.tracks[track_id]._update(detections[j], t, self.frame)
        for j, detection in enumerate(detections):
            if j not in used_detections and len(self.tracks) < self.max_tracks:
                track = Track(self._next_id, detection.label, detection.box, t, t, moved_t=t)
                track._update(detection, t, self.frame)
                self.tracks[track.id] = track
                self._next_id += 1
        for track in list(self.tracks.values()):
            if track.id in used_tracks or track.last_t == t:
                continue
            if any(_inside(track.box, area) for area in checked):
                track.misses += 1
                track.last_checked = self.frame
            if track.misses > self.max_misses or t - track.last_t > self.max_age_s:
                del self.tracks[track.id]
        return list(self.tracks.values())

    def due_for_check(self, every: int) -> list[Track]:
        """Tracks not looked at for ``every`` frames (a stationary object is not in any motion
        region, yet must be confirmed now and then — and dropped when it left unseen)."""
        upcoming = self.frame + 1  # called before the frame's update
        return [t for t in self.tracks.values() if upcoming - t.last_checked >= every]


def _inside(box: Box, area: Box) -> bool:
    cx, cy = centre(box)
    return area[0] <= cx <= area[2] and area[1] <= cy <= area[3]
