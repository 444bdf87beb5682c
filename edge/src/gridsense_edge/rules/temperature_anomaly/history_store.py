"""The rule's per-point minute history on disk, so a restart does not silence the model.

Without it every reboot, update or power cut would leave a gateway's model blind for a day
(it speaks only over a full 24-hour baseline). One small file per point (~12 kB), written whole
to a temporary name and renamed over the old one, every ``SAVE_EVERY_MIN`` minutes: a crash
loses at most that many minutes, which the history fills like any short gap.
"""

from __future__ import annotations

import logging
import os
import struct
from array import array
from pathlib import Path

from ...logs import log_event
from .features import HISTORY_MIN, PointHistory

log = logging.getLogger(__name__)

SAVE_EVERY_MIN = 15
_MAGIC = b"GSTH"
_VERSION = 1
_HEADER = struct.Struct("<4sHqI")  # magic, version, open minute, count of values that follow


class HistoryStore:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.counters = dict.fromkeys(("history_saved", "history_loaded", "history_errors"), 0)

    def _path(self, point: str) -> Path:
        return self.directory / f"{point}.history"  # point ids are filename-safe by pattern

    def load(self, point: str) -> PointHistory | None:
        path = self._path(point)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            return self._failed("temperature_history_unreadable", point, exc)
        try:
            magic, version, minute, count = _HEADER.unpack_from(data)
            if magic != _MAGIC or version != _VERSION or not 0 < count <= HISTORY_MIN + 1:
                raise ValueError(f"not a history file of version {_VERSION}")
            values = array("d")
            values.frombytes(data[_HEADER.size:_HEADER.size + 8 * count])
            if len(values) != count:
                raise ValueError(f"truncated: {len(values)} of {count} minutes")
        except (struct.error, ValueError) as exc:
            return self._failed("temperature_history_corrupt", point, exc)
        self.counters["history_loaded"] += 1
        return PointHistory.restored(minute, values.tolist())

    def save(self, point: str, history: PointHistory) -> None:
        saved = history.saved()
        if saved is None:
            return
        minute, values = saved
        path = self._path(point)
        temporary = path.with_suffix(".tmp")
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            temporary.write_bytes(_HEADER.pack(_MAGIC, _VERSION, minute, len(values))
                                  + array("d", values).tobytes())
            os.replace(temporary, path)
        except OSError as exc:
            self._failed("temperature_history_unwritable", point, exc)
            return
        self.counters["history_saved"] += 1

    def _failed(self, event: str, point: str, exc: Exception) -> None:
        # The model then starts this point's day again; the threshold rules never depended on it.
        self.counters["history_errors"] += 1
        log_event(log, event, logging.WARNING, point=point, path=str(self._path(point)),
                  error=str(exc))
        return None
