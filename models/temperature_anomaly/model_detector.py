"""The model as a detector for the harness: the edge's ONNX session over whole series.

Features are computed at once (``features.series_features``, held equal to the edge's
incremental ones by a test), scored by onnxruntime in one batch through the edge's own
``TemperatureModel`` metadata checks, and turned into alarms by the edge rule's ``ScoreLatch``
reading by reading, so the decision logic is the gateway's.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

from gridsense_edge.rules.temperature_anomaly.model import ModelUnavailable, TemperatureModel
from gridsense_edge.rules.temperature_anomaly.rule import ScoreLatch, TemperatureAnomalyConfig
from gridsense_protocol import AlarmState

from .detectors import Alarms, minute_times
from .features import rising_rows, series_features
from .rooms import ROOMS
from .simulator import Batch

MIN_DURATION_S = TemperatureAnomalyConfig.model_fields["min_duration_s"].default


class ModelDetector:
    def __init__(self, path: Path, threshold: float | None = None) -> None:
        """``threshold`` None: the model's own for each room's kind, as a gateway configured
        with ``kind: fridge`` on its fridge points would use."""
        try:
            model = TemperatureModel(path)
        except ModelUnavailable as exc:
            raise ValueError(str(exc)) from None
        self.threshold = model.threshold if threshold is None else threshold
        self.fridge_threshold = model.fridge_threshold if threshold is None else threshold
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        self._session = ort.InferenceSession(str(path), options,
                                             providers=["CPUExecutionProvider"])

    def scores(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(scores, (sensor, minute) of each, whether each reading is ``rising``)."""
        rows, where = series_features(values)
        if len(rows) == 0:
            return np.zeros(0, np.float32), where, np.zeros(0, bool)
        (scores,) = self._session.run(None, {"features": rows})
        return scores.reshape(-1), where, rising_rows(rows)

    def alarms(self, batch: Batch) -> Alarms:
        scores, where, warmer = self.scores(batch.values)
        times = minute_times(batch.values.shape[1])
        out: Alarms = []
        for i in range(len(batch.values)):
            mine = where[:, 0] == i
            latch = ScoreLatch(self.fridge_threshold if ROOMS[batch.room].fridge
                               else self.threshold, MIN_DURATION_S)
            hits = [int(t) for t, s, up in zip(where[mine, 1], scores[mine], warmer[mine],
                                                strict=True)
                    if latch.update(times[t], float(s), bool(up)) is AlarmState.ACTIVE]
            out.append(np.array(hits, dtype=np.int64))
        return out
