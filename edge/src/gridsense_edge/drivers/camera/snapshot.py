"""The JPEG an incident carries: the frame, the rule's zone, and the boxes that decided it."""

from __future__ import annotations

import numpy as np

from .geometry import Box
from .zones import Zone

ZONE_COLOUR = (0, 215, 255)  # BGR amber
HIT_COLOUR = (0, 0, 255)
OTHER_COLOUR = (255, 255, 255)
QUALITIES = (85, 70, 55, 40)


def draw(frame: np.ndarray, zone: Zone | None, involved: list[tuple[int, str, Box]],
         others: list[tuple[int, str, Box]]) -> np.ndarray:
    import cv2

    image = frame.copy()
    if zone is not None:
        polygon = np.array([[round(x), round(y)] for x, y in zone.polygon], dtype=np.int32)
        overlay = image.copy()
        cv2.fillPoly(overlay, [polygon], ZONE_COLOUR)
        image = cv2.addWeighted(overlay, 0.25, image, 0.75, 0)
        cv2.polylines(image, [polygon], True, ZONE_COLOUR, 2)
        cv2.putText(image, zone.name, (int(polygon[0][0]) + 3, int(polygon[0][1]) + 14),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.45, ZONE_COLOUR, 1, cv2.LINE_AA)
    hit_ids = {track_id for track_id, _, _ in involved}
    for entries, colour, thickness in ((others, OTHER_COLOUR, 1), (involved, HIT_COLOUR, 3)):
        for track_id, label, box in entries:
            if colour is OTHER_COLOUR and track_id in hit_ids:
                continue
            x1, y1, x2, y2 = (round(v) for v in box)
            cv2.rectangle(image, (x1, y1), (x2, y2), colour, thickness)
            cv2.putText(image, f"{label} #{track_id}", (x1, max(10, y1 - 4)),
                        cv2.FONT_HERSHEY_SIMPLEX, 0.4, colour, 1, cv2.LINE_AA)
    return image


def encode_bounded(image: np.ndarray, max_bytes: int, max_width: int = 1280) -> bytes:
    import cv2

    height, width = image.shape[:2]
    if width > max_width:
        image = cv2.resize(image, (max_width, int(height * max_width / width)),
                           interpolation=cv2.INTER_AREA)
    while True:
        for quality in QUALITIES:
            ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
            if ok and len(data) <= max_bytes:
                return data.tobytes()
        if image.shape[1] <= 64:
            raise ValueError(f"cannot fit a snapshot in {max_bytes} bytes")
        image = cv2.resize(image, (image.shape[1] // 2, image.shape[0] // 2),
                           interpolation=cv2.INTER_AREA)


def render(frame: np.ndarray, zone: Zone | None, involved: list[tuple[int, str, Box]],
           others: list[tuple[int, str, Box]], max_bytes: int) -> bytes:
    return encode_bounded(draw(frame, zone, involved, others), max_bytes)
