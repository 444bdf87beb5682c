"""YOLOX layout: [1, N, 5+nc] from an export with ``decode_in_inference=False``."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Literal

import numpy as np
from pydantic import Field

from .base import DECODERS, Decoded, DecoderConfigBase


class YoloxFormat(DecoderConfigBase):
    type: Literal["yolox"]
    strides: Annotated[list[Annotated[int, Field(ge=1)]], Field(min_length=1)] = Field(
        default_factory=lambda: [8, 16, 32])
    decoded: bool = False


@lru_cache(maxsize=8)  # one model per camera: computed once, not per inference
def _grids(width: int, height: int, strides: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    cells, steps = [], []
    for stride in strides:
        rows, cols = height // stride, width // stride
        yy, xx = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
        cells.append(np.stack([xx.ravel(), yy.ravel()], axis=1))
        steps.append(np.full(rows * cols, stride))
    return np.concatenate(cells).astype(np.float32), np.concatenate(steps).astype(np.float32)


@DECODERS.register(YoloxFormat)
def decode(options: YoloxFormat, output: np.ndarray, width: int, height: int,
           min_score: float) -> Decoded:
    table = output[0] if output.ndim == 3 else output
    if table.shape[1] < 6:
        raise ValueError(f"YOLOX output needs 5+nc columns, got shape {tuple(output.shape)}")
    # score = objectness x class probability <= objectness: rows below the minimum go first.
    keep = table[:, 4] >= min_score
    if options.decoded:
        table = table[keep]
        centres, sizes = table[:, :2], table[:, 2:4]
    else:
        cells, steps = _grids(width, height, tuple(options.strides))
        if cells.shape[0] != table.shape[0]:
            raise ValueError(f"YOLOX output has {table.shape[0]} rows; strides {options.strides} "
                             f"at {width}x{height} give {cells.shape[0]}")
        table, cells, steps = table[keep], cells[keep], steps[keep]
        centres = (table[:, :2] + cells) * steps[:, None]
        sizes = np.exp(np.clip(table[:, 2:4], -10, 10)) * steps[:, None]
    probs = table[:, 4:5] * table[:, 5:]
    class_ids = probs.argmax(axis=1)
    scores = probs[np.arange(table.shape[0]), class_ids]
    boxes = np.concatenate([centres - sizes / 2, centres + sizes / 2], axis=1)
    return Decoded(boxes, scores, class_ids)
