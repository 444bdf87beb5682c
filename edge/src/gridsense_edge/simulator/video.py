"""Render test videos with moving figures whose ground truth is known (tests and the demo)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

# BGR colours per class; the synthetic detector's colour weights are built from these.
CLASS_COLOURS: dict[str, tuple[int, int, int]] = {
    "person": (40, 40, 230),  # red
    "bicycle": (230, 60, 40),  # blue: the e-bike class
    "car": (40, 200, 40),  # green
}

Box = tuple[float, float, float, float]  # x1, y1, x2, y2 in pixels


@dataclass(frozen=True)
class Figure:
    label: str
    keyframes: list[tuple[float, Box]]  # (seconds, box), sorted by time

    def box_at(self, t: float) -> Box | None:
        """Linear between key frames; absent before the first and after the last."""
        frames = self.keyframes
        if not frames or t < frames[0][0] or t > frames[-1][0]:
            return None
        for (t0, b0), (t1, b1) in itertools.pairwise(frames):
            if t0 <= t <= t1:
                a = 0.0 if t1 == t0 else (t - t0) / (t1 - t0)
                return tuple(v0 + a * (v1 - v0) for v0, v1 in zip(b0, b1, strict=True))  # type: ignore[return-value]
        return frames[-1][1]


@dataclass(frozen=True)
class VideoScenario:
    width: int = 320
    height: int = 240
    fps: float = 10.0
    duration_s: float = 6.0
    figures: list[Figure] = field(default_factory=list)
    seed: int = 7
    # (start_s, end_s, brightness delta): a sudden global change such as an IR switch
    flashes: list[tuple[float, float, int]] = field(default_factory=list)

    @property
    def frames(self) -> int:
        return round(self.duration_s * self.fps)

    def ground_truth(self, t: float) -> list[tuple[str, Box]]:
        out = []
        for figure in self.figures:
            box = figure.box_at(t)
            if box is not None:
                out.append((figure.label, box))
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VideoScenario:
        figures = [
            Figure(f["label"], [(float(t), tuple(map(float, b))) for t, b in f["keyframes"]])  # type: ignore[misc]
            for f in data.get("figures", [])
        ]
        known = {k: v for k, v in data.items() if k in ("width", "height", "fps", "duration_s",
                                                        "seed")}
        flashes = [tuple(x) for x in data.get("flashes", [])]
        return cls(figures=figures, flashes=flashes, **known)  # type: ignore[arg-type]


def background(scenario: VideoScenario) -> np.ndarray:
    """Grey texture (tiles and noise, no saturated colour) so motion and colour both matter."""
    rng = np.random.default_rng(scenario.seed)
    h, w = scenario.height, scenario.width
    base = rng.integers(90, 150, size=(h // 16 + 1, w // 16 + 1), dtype=np.uint8)
    tiles = np.kron(base, np.ones((16, 16), dtype=np.uint8))[:h, :w]
    noise = rng.integers(-12, 12, size=(h, w), dtype=np.int16)
    grey = np.clip(tiles.astype(np.int16) + noise, 0, 255).astype(np.uint8)
    return np.repeat(grey[:, :, None], 3, axis=2)


def render_frame(scenario: VideoScenario, t: float, bg: np.ndarray) -> np.ndarray:
    frame = bg.copy()
    for label, (x1, y1, x2, y2) in scenario.ground_truth(t):
        colour = np.array(CLASS_COLOURS[label], dtype=np.uint8)
        ya, yb = max(0, round(y1)), min(scenario.height, round(y2))
        xa, xb = max(0, round(x1)), min(scenario.width, round(x2))
        frame[ya:yb, xa:xb] = colour
    for start, end, delta in scenario.flashes:
        if start <= t < end:
            frame = np.clip(frame.astype(np.int16) + delta, 0, 255).astype(np.uint8)
    return frame


def write_video(path: Path, scenario: VideoScenario) -> Path:
    """An MJPG .avi (the codec every OpenCV build can write and read headless)."""
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), scenario.fps,
                             (scenario.width, scenario.height))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {path} (MJPG)")
    bg = background(scenario)
    try:
        for i in range(scenario.frames):
            writer.write(render_frame(scenario, i / scenario.fps, bg))
    finally:
        writer.release()
    return path


def walk(label: str, start: Box, end: Box, t0: float, t1: float, stay_until: float | None = None
         ) -> Figure:
    """A figure moving from ``start`` to ``end`` between t0 and t1, then (optionally) staying."""
    frames: list[tuple[float, Box]] = [(t0, start), (t1, end)]
    if stay_until is not None:
        frames.append((stay_until, end))
    return Figure(label, frames)


def intrusion_scenario(duration_s: float = 6.0, fps: float = 10.0) -> VideoScenario:
    """A person walks from the left into the right half (the demo's restricted zone) and stays;
    a car crosses the top without entering it. Frame 320x240."""
    return VideoScenario(
        fps=fps, duration_s=duration_s,
        figures=[
            walk("person", (20, 120, 50, 200), (220, 130, 250, 210), 0.5, 3.0, duration_s),
            walk("car", (0, 20, 60, 50), (250, 20, 310, 50), 0.0, duration_s * 0.8),
        ],
    )
