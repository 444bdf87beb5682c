"""Boxes and detections: the ``[class, score, box]`` contract every detector returns."""

from __future__ import annotations

from dataclasses import dataclass

Box = tuple[float, float, float, float]  # x1, y1, x2, y2 in frame pixels


@dataclass(frozen=True, slots=True)
class Detection:
    label: str
    class_id: int
    score: float
    box: Box

    def shifted(self, dx: float, dy: float, scale: float) -> Detection:
        """From model-input coordinates of a crop back to the frame."""
        x1, y1, x2, y2 = self.box
        return Detection(self.label, self.class_id, self.score,
                         (x1 / scale + dx, y1 / scale + dy, x2 / scale + dx, y2 / scale + dy))


def iou(a: Box, b: Box) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def centre(box: Box) -> tuple[float, float]:
    return (box[0] + box[2]) / 2, (box[1] + box[3]) / 2


def bottom_centre(box: Box) -> tuple[float, float]:
    """Where an object stands: zone membership is decided by this point."""
    return (box[0] + box[2]) / 2, box[3]
