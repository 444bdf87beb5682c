"""An onnxruntime session behind the ``[class, score, box]`` contract."""

from __future__ import annotations

import threading
import weakref
from pathlib import Path
from typing import Any

import numpy as np

from ..geometry import Detection
from ..nms import nms
from .base import DECODERS
from .card import ModelCard, load_card


class ModelError(RuntimeError):
    """The model file cannot be used: names the file and why."""


class _Shared:
    """Holds a session; the cache keeps it only while some detector does."""

    def __init__(self, session: Any) -> None:
        self.session = session


_sessions: weakref.WeakValueDictionary[tuple[str, int, int, int], _Shared] = (
    weakref.WeakValueDictionary())
_sessions_lock = threading.Lock()


def _shared_session(model: Path, threads: int) -> _Shared:
    import onnxruntime as ort

    stat = model.stat()
    key = (str(model.resolve()), stat.st_mtime_ns, stat.st_size, threads)
    with _sessions_lock:
        found = _sessions.get(key)
        if found is not None:
            return found
        options = ort.SessionOptions()
        # One camera must not take every core of a small gateway: threads come from config.
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            made = _Shared(ort.InferenceSession(str(model), options,
                                                providers=["CPUExecutionProvider"]))
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
            raise ModelError(f"model {model} cannot be loaded by onnxruntime: "
                             f"{str(exc).splitlines()[0][:300]}") from None
        _sessions[key] = made
        return made


class OnnxDetector:
    def __init__(self, model: Path, *, threads: int = 1, score_threshold: float = 0.4,
                 iou_threshold: float = 0.45, card: ModelCard | None = None) -> None:
        import cv2

        self._cv2 = cv2
        self.model_path = model
        self.card = card or load_card(model)
        self.score_threshold = score_threshold
        self.iou_threshold = iou_threshold
        self._decode = DECODERS.get(self.card.format.type).factory
        try:
            self._shared = _shared_session(model, threads)
        except OSError as exc:
            raise ModelError(f"model {model} cannot be read: {exc.strerror}") from None
        self.session = self._shared.session
        first = self.session.get_inputs()[0]
        self._input_name = first.name
        shape = [d if isinstance(d, int) else None for d in first.shape]
        size = (self.card.input.height, self.card.input.width)
        if len(shape) != 4 or (shape[2], shape[3]) not in (size, (None, None)):
            raise ModelError(f"model {model} takes input {first.shape}; its card says "
                             f"[1, 3, {size[0]}, {size[1]}]")

    @property
    def input_size(self) -> tuple[int, int]:
        return self.card.input.width, self.card.input.height

    def tensor(self, image: np.ndarray) -> np.ndarray:
        """NCHW float32, colour order and scale as the card says (OpenCV's C++ does the
        transpose, conversion and scaling in one pass: a third of numpy's time)."""
        spec = self.card.input
        return self._cv2.dnn.blobFromImage(image, scalefactor=spec.scale,
                                           swapRB=spec.color == "rgb")

    def infer(self, image: np.ndarray) -> Any:
        return self.run(self.tensor(image))

    def run(self, tensor: np.ndarray) -> Any:
        """The model alone (what the benchmark calls inference time)."""
        return self.session.run(None, {self._input_name: tensor})[0]

    def detect(self, image: np.ndarray) -> list[Detection]:
        width, height = self.input_size
        if image.shape[:2] != (height, width):
            raise ValueError(f"crop is {image.shape[1]}x{image.shape[0]}, model wants "
                             f"{width}x{height}")
        return self.decode(np.asarray(self.infer(image)))

    def decode(self, output: np.ndarray) -> list[Detection]:
        width, height = self.input_size
        decoded = self._decode(self.card.format, output, width, height, self.score_threshold)
        labels = self.card.labels
        keep = (decoded.scores >= self.score_threshold) & (decoded.class_ids >= 0) & (
            decoded.class_ids < len(labels))
        boxes = decoded.boxes[keep]
        scores = decoded.scores[keep]
        class_ids = decoded.class_ids[keep]
        if not len(scores):
            return []
        # Per-class NMS in one pass: offset each class's boxes so classes never overlap.
        offsets = class_ids[:, None].astype(np.float32) * (4.0 * max(width, height))
        kept = nms(boxes + offsets, scores, self.iou_threshold)
        return [
            Detection(labels[int(class_ids[i])], int(class_ids[i]), float(scores[i]),
                      tuple(float(v) for v in boxes[i]))  # type: ignore[arg-type]
            for i in kept
        ]
