"""SSD-style post-processed layout: [K, 6] (or [1, K, 6]) rows of x1, y1, x2, y2, score, class.

Coordinates are fractions of the input (``normalized: true``, the usual export) or input pixels.
Rows with a score of 0 are padding. ``class_offset`` covers exports whose class 0 is background.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from .base import DECODERS, Decoded, DecoderConfigBase


class SsdFormat(DecoderConfigBase):
    type: Literal["ssd"]
    normalized: bool = True
    class_offset: int = 0


@DECODERS.register(SsdFormat)
def decode(options: SsdFormat, output: np.ndarray, width: int, height: int,
           _min_score: float) -> Decoded:
    table = output.reshape(-1, output.shape[-1])
    if table.shape[1] != 6:
        raise ValueError(f"SSD output needs rows of 6 values, got shape {tuple(output.shape)}")
    boxes = table[:, :4].astype(np.float32)
    if options.normalized:
        boxes = boxes * np.array([width, height, width, height], dtype=np.float32)
    class_ids = table[:, 5].round().astype(np.int64) - options.class_offset
    return Decoded(boxes, table[:, 4], class_ids)
