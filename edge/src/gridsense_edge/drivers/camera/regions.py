"""Region crops sized to the model input: where the detector looks in a frame."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .geometry import Box

PAD_VALUE = 114
MARGIN = 0.25  # grow each box by this fraction per side: a moving object's edges stay inside


@dataclass(frozen=True, slots=True)
class Region:
    x: int
    y: int
    side: int  # square, in frame pixels
    scale: float  # model input / side

    def crop(self, frame: np.ndarray, input_size: int) -> np.ndarray:
        import cv2

        height, width = frame.shape[:2]
        out = np.full((self.side, self.side, 3), PAD_VALUE, dtype=np.uint8)
        x2, y2 = min(width, self.x + self.side), min(height, self.y + self.side)
        out[: y2 - self.y, : x2 - self.x] = frame[self.y:y2, self.x:x2]
        if self.side != input_size:
            out = cv2.resize(out, (input_size, input_size), interpolation=cv2.INTER_AREA)
        return out

    def contains(self, box: Box) -> bool:
        return (box[0] >= self.x and box[1] >= self.y and box[2] <= self.x + self.side
                and box[3] <= self.y + self.side)


def _grow(box: Box, width: int, height: int) -> Box:
    mx, my = (box[2] - box[0]) * MARGIN, (box[3] - box[1]) * MARGIN
    return (max(0.0, box[0] - mx), max(0.0, box[1] - my), min(float(width), box[2] + mx),
            min(float(height), box[3] + my))


def _union(a: Box, b: Box) -> Box:
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


def _square(box: Box, side: int, width: int, height: int) -> Region:
    side = max(side, int(np.ceil(max(box[2] - box[0], box[3] - box[1]))))
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    x = round(min(max(0.0, cx - side / 2), max(0.0, width - side)))
    y = round(min(max(0.0, cy - side / 2), max(0.0, height - side)))
    return Region(x, y, side, 1.0)


def plan_regions(boxes: list[Box], width: int, height: int, input_size: int,
                 max_regions: int = 4) -> list[Region]:
    """Group boxes greedily into squares; more than ``max_regions`` means one whole-frame look."""
    groups: list[Box] = []
    for box in sorted((_grow(b, width, height) for b in boxes), key=lambda b: (b[0], b[1])):
        for i, group in enumerate(groups):
            merged = _union(group, box)
            if max(merged[2] - merged[0], merged[3] - merged[1]) <= input_size:
                groups[i] = merged
                break
        else:
            groups.append(box)
    if len(groups) > max_regions:
        groups = [(0.0, 0.0, float(width), float(height))]
    regions = []
    for group in groups:
        region = _square(group, input_size, width, height)
        regions.append(Region(region.x, region.y, region.side, input_size / region.side))
    return regions
