"""The temperature model's ONNX session: one row of ``FEATURES`` in, one score (log-odds) out.

onnxruntime and numpy are imported here only, when a model is loaded: a gateway installed
without the ``temperature`` extra still runs every other rule.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .features import FEATURES, HISTORY_MIN


class ModelUnavailable(Exception):
    """The model cannot run here; the message says why (for the health report)."""


class TemperatureModel:
    def __init__(self, path: Path) -> None:
        try:
            import numpy as np
            import onnxruntime as ort
        except ImportError as exc:
            raise ModelUnavailable(
                f"onnxruntime/numpy 未安装，模型未启用 / not installed, model off ({exc.name}); "
                "install gridsense-edge[temperature]") from None
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1  # one row a minute per point: one core is plenty
        options.inter_op_num_threads = 1
        try:
            session = ort.InferenceSession(str(path), options,
                                           providers=["CPUExecutionProvider"])
        except Exception as exc:  # missing file, not ONNX, an op this runtime lacks
            raise ModelUnavailable(f"{path}: 无法加载 / cannot load: {exc}") from None
        meta: dict[str, Any] = session.get_modelmeta().custom_metadata_map
        try:
            features = tuple(json.loads(meta["features"]))
            self.threshold = float(meta["threshold"])
            self.fridge_threshold = float(meta.get("fridge_threshold", self.threshold))
            history = int(meta["history_min"])
        except (KeyError, ValueError, TypeError) as exc:
            raise ModelUnavailable(
                f"{path}: 不是温度异常模型 / not a temperature_anomaly model "
                f"(metadata: {exc})") from None
        if features != FEATURES or history != HISTORY_MIN:
            raise ModelUnavailable(
                f"{path}: 模型特征与本网关不符 / model expects features {list(features)} over "
                f"{history} min; this gateway computes {list(FEATURES)} over {HISTORY_MIN} min")
        self.path = path
        self._np = np
        self._session = session
        self._input = session.get_inputs()[0].name

    def score(self, row: list[float]) -> float:
        (scores,) = self._session.run(None, {self._input: self._np.array([row], "float32")})
        value = float(scores.reshape(-1)[0])
        if value != value:  # NaN: a broken model must not look like a calm one
            raise ValueError("model returned NaN")
        return value
