"""The decoder registry: one module per detector output layout, keyed by the card's ``format``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from ....plugins import PluginRegistry


@dataclass(frozen=True, slots=True)
class Decoded:
    boxes: np.ndarray  # [N, 4] x1, y1, x2, y2 in model-input pixels
    scores: np.ndarray  # [N]
    class_ids: np.ndarray  # [N] int


class DecoderConfigBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# decoder(options, first output tensor, input width, input height, min score) -> Decoded;
# the minimum lets a decoder skip rows that cannot pass before doing per-class work.
Decoder = Callable[[Any, np.ndarray, int, int, float], Decoded]
DECODERS: PluginRegistry[Decoder] = PluginRegistry(
    "detector format", "gridsense_edge.drivers.camera.detectors"
)
