"""Scores a granted swipe with the access-pattern ONNX model (models/access_anomaly)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from gridsense_protocol import AlarmState, Severity, utc_now

from ...events import IncidentEvent

log = logging.getLogger(__name__)

HOURS = 24
MAX_PENDING = 32


@dataclass(frozen=True, slots=True)
class Score:
    value: float
    threshold: float
    hour: int  # local hour the model judged
    known_credential: bool

    @property
    def anomalous(self) -> bool:
        return self.value > self.threshold


class AnomalyModel:
    def __init__(self, path: Path) -> None:
        import numpy as np
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1  # a gateway: one swipe at a time, one core is plenty
        self._np = np
        self._session = ort.InferenceSession(str(path), options,
                                             providers=["CPUExecutionProvider"])
        meta: dict[str, Any] = self._session.get_modelmeta().custom_metadata_map
        try:
            self._credentials = {c: i + 1 for i, c in enumerate(json.loads(meta["credentials"]))}
            self._doors = {d: i + 1 for i, d in enumerate(json.loads(meta["doors"]))}
            self.threshold = float(meta["threshold"])
            self.utc_offset_h = float(meta["utc_offset_h"])
        except (KeyError, ValueError) as exc:
            raise ValueError(f"{path}: not an access_anomaly model (metadata: {exc})") from None
        self.path = path

    def score(self, credential: str | None, door: str, ts: datetime) -> Score:
        hour = (ts.astimezone(UTC) + timedelta(hours=self.utc_offset_h)).hour
        c = self._credentials.get(credential or "", 0)
        d = self._doors.get(door, 0)
        np = self._np
        (scores,) = self._session.run(None, {
            "cred_hour": np.array([c * HOURS + hour], dtype=np.int64),
            "door_hour": np.array([d * HOURS + hour], dtype=np.int64),
        })
        return Score(float(scores[0]), self.threshold, hour, c != 0)


class AnomalyWatch:
    """Scores granted swipes off the event loop and reports the anomalous ones.

    ``report(score)`` runs on the loop for a swipe above the threshold. The model is loaded on
    the worker thread at first use, so a gateway that never grants pays nothing.
    """

    def __init__(self, path: Path, report: Any, counters: dict[str, int]) -> None:
        self.path = path
        self._report = report
        self._counters = counters
        self._model: AnomalyModel | None = None
        self._pending = 0

    def submit(self, credential: str | None, door: str, ts: datetime, context: Any) -> None:
        import asyncio

        if self._pending >= MAX_PENDING:
            self._counters["anomaly_not_scored"] += 1
            return
        self._pending += 1

        def score() -> Score:
            if self._model is None:
                self._model = AnomalyModel(self.path)
            return self._model.score(credential, door, ts)

        def done(future: asyncio.Future[Score]) -> None:
            self._pending -= 1
            if future.cancelled() or future.exception() is not None:
                self._counters["anomaly_not_scored"] += 1
                log.error("event=anomaly_scoring_failed model=%s error=%r", self.path,
                          None if future.cancelled() else future.exception())
                return
            result = future.result()
            if result.anomalous:
                self._counters["anomalies"] += 1
                self._report(result, context)

        asyncio.get_running_loop().run_in_executor(None, score).add_done_callback(done)


def anomaly_incident(point: str, door: str, severity: Severity, score: Score,
                     credential: str | None, card: str | None = None,
                     pass_id: str | None = None) -> IncidentEvent:
    """``access_anomaly`` for a granted card, PIN or pass (a pass scores as its holder)."""
    return IncidentEvent(
        point=point, type="access_anomaly", severity=severity, state=AlarmState.ACTIVE,
        ts=utc_now(), value=round(score.value, 4), threshold=round(score.threshold, 4), unit="",
        message=f"unusual access at door {door}: {credential or 'unknown credential'} at "
                f"{score.hour:02d}h",
        details={"door": door, "credential": credential, "card": card, "pass_id": pass_id,
                 "hour": score.hour, "score": round(score.value, 4),
                 "threshold": round(score.threshold, 4),
                 "known_credential": score.known_credential},
    )
