"""YOLO generic layout, as exported by Ultralytics v8/v9/v11: [1, 4+nc, N].

Rows 0-3 are cx, cy, w, h in model-input pixels, then one score per class (no objectness).
Some exports put the anchors first ([1, N, 4+nc]); the longer axis is taken as N.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from .base import DECODERS, Decoded, DecoderConfigBase


class YoloFormat(DecoderConfigBase):
    type: Literal["yolo"]


@DECODERS.register(YoloFormat)
def decode(_options: YoloFormat, output: np.ndarray, _width: int, _height: int,
           _min_score: float) -> Decoded:
    table = output[0] if output.ndim == 3 else output
    if table.shape[0] > table.shape[1]:
        table = table.T  # [N, 4+nc] export
    if table.shape[0] < 5:
        raise ValueError(f"YOLO output needs 4+nc rows, got shape {tuple(output.shape)}")
    cx, cy, w, h = table[:4]
    scores_all = table[4:]
    class_ids = scores_all.argmax(axis=0)
    scores = scores_all[class_ids, np.arange(table.shape[1])]
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    return Decoded(boxes, scores, class_ids)
