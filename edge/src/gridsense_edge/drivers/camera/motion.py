"""Motion gating: where did the picture change, so detection runs only there."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .geometry import Box


@dataclass(frozen=True, slots=True)
class MotionSettings:
    width: int = 160  # analysis width in pixels (height keeps the aspect)
    threshold: int = 25  # grey-level difference that counts as changed
    min_area: float = 0.001  # smallest blob, as a fraction of the frame
    alpha: float = 0.05  # background adaptation per frame
    recalibrate_above: float = 0.45  # changed fraction that means "the whole scene changed"


@dataclass(frozen=True, slots=True)
class MotionResult:
    boxes: list[Box]
    changed: float  # fraction of the analysed picture that changed
    recalibrated: bool


class MotionDetector:
    def __init__(self, settings: MotionSettings | None = None) -> None:
        import cv2  # only when a camera runs

        self._cv2 = cv2
        self.settings = settings or MotionSettings()
        self._background: np.ndarray | None = None
        self._kernel = np.ones((3, 3), np.uint8)
        self.recalibrations = 0

    def _small(self, frame: np.ndarray) -> tuple[np.ndarray, float]:
        cv2 = self._cv2
        height, width = frame.shape[:2]
        scale = self.settings.width / width
        grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        small = cv2.resize(grey, (self.settings.width, max(1, int(height * scale))),
                           interpolation=cv2.INTER_AREA)
        return cv2.GaussianBlur(small, (5, 5), 0), scale

    def update(self, frame: np.ndarray) -> MotionResult:
        cv2, s = self._cv2, self.settings
        small, scale = self._small(frame)
        if self._background is None:
            self._background = small.astype(np.float32)
            return MotionResult([], 0.0, False)
        diff = cv2.absdiff(small, cv2.convertScaleAbs(self._background))
        mask = (diff > s.threshold).astype(np.uint8)
        changed = float(mask.mean())
        if changed > s.recalibrate_above:
            self._background = small.astype(np.float32)
            self.recalibrations += 1
            return MotionResult([], changed, True)
        cv2.accumulateWeighted(small, self._background, s.alpha)
        if changed == 0.0:
            return MotionResult([], 0.0, False)
        mask = cv2.dilate(mask, self._kernel, iterations=2)
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        min_area = s.min_area * mask.size
        boxes: list[Box] = []
        for contour in contours:
            x, y, w, h = cv2.boundingRect(contour)
            if w * h >= min_area:
                boxes.append((x / scale, y / scale, (x + w) / scale, (y + h) / scale))
        return MotionResult(boxes, changed, False)
