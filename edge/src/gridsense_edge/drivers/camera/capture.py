"""Capture: one thread per camera reads and decodes frames into a small bounded queue."""

from __future__ import annotations

import logging
import queue
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from ...backoff import backoff_delay
from ...logs import log_event
from .worker import WorkerThread

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Frame:
    image: np.ndarray
    t: float  # seconds on the stream's clock
    ts: datetime  # wall-clock instant of the frame
    index: int


@dataclass(frozen=True, slots=True)
class CaptureSettings:
    source: str | int
    fps: float = 5.0
    realtime: bool = True  # files only: pace to the file's own frame rate
    loop: bool = False  # files only: start again at the end
    watchdog_s: float = 10.0
    reconnect_max_s: float = 60.0
    queue_size: int = 2


def is_file_source(source: str | int) -> bool:
    return isinstance(source, str) and "://" not in source


class CaptureWorker(WorkerThread):
    role = "capture"

    def __init__(self, name: str, settings: CaptureSettings) -> None:
        super().__init__(name)
        self.settings = settings
        self.frames: queue.Queue[Frame] = queue.Queue(maxsize=settings.queue_size)
        self.counters = dict.fromkeys(("frames_in", "dropped_frames", "reconnects",
                                       "open_failures"), 0)
        self.state = "starting"
        self.detail: str | None = None
        self.last_frame_at: float | None = None  # monotonic
        self._index = 0

    def _open(self) -> Any:
        import cv2

        s = self.settings
        source = s.source
        if isinstance(source, str) and "://" in source:
            params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(s.watchdog_s * 1000),
                      cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(s.watchdog_s * 1000)]
            capture = cv2.VideoCapture(source, cv2.CAP_FFMPEG, params)
        else:
            capture = cv2.VideoCapture(source)
        if not capture.isOpened():
            capture.release()
            return None
        return capture

    def _run(self) -> None:
        failures = 0
        origin_wall = datetime.now(UTC)
        stream_offset = 0.0  # a looping file's clock keeps going forward
        while not self._stop.is_set():
            capture = self._open()
            if capture is None:
                failures += 1
                self.counters["open_failures"] += 1
                delay = backoff_delay(failures - 1, 1.0, self.settings.reconnect_max_s)
                self._set_state("down", f"cannot open {self.settings.source}")
                log_event(log, "camera_open_failed", logging.WARNING, camera=self.name,
                          source=str(self.settings.source), retry_in_s=round(delay, 2))
                self._stop.wait(delay)
                continue
            try:
                ended_at = self._read_until_stalled(capture, origin_wall, stream_offset)
            finally:
                capture.release()
            if self._stop.is_set():
                break
            if ended_at is not None and self.settings.loop:
                stream_offset = ended_at
                continue
            failures += 1
            self.counters["reconnects"] += 1
            delay = backoff_delay(failures - 1, 0.5, self.settings.reconnect_max_s)
            self._set_state("down", "no frames (watchdog)")
            log_event(log, "camera_reconnecting", logging.WARNING, camera=self.name,
                      retry_in_s=round(delay, 2), frames_in=self.counters["frames_in"])
            self._stop.wait(delay)
            if self.counters["frames_in"]:
                failures = min(failures, 3)

    def _read_until_stalled(self, capture: Any, origin_wall: datetime, offset: float
                            ) -> float | None:
        """Read until stopped or stalled; for a file, returns its clock at the end."""
        import cv2

        s = self.settings
        is_file = is_file_source(s.source)
        file_fps = capture.get(cv2.CAP_PROP_FPS) if is_file else 0.0
        file_fps = file_fps if file_fps and file_fps > 0 else s.fps
        started = time.monotonic()
        next_t = offset
        position = 0
        last_good = time.monotonic()
        while not self._stop.is_set():
            if is_file:
                t = offset + position / file_fps
                position += 1
                if not capture.grab():
                    return t
                if t + 1e-6 < next_t:
                    continue
                if s.realtime:
                    self._stop.wait(max(0.0, started + (t - offset) - time.monotonic()))
            else:
                if not capture.grab():
                    if time.monotonic() - last_good > s.watchdog_s:
                        return None
                    self._stop.wait(0.05)
                    continue
                t = time.monotonic() - started + offset
                if t < next_t:
                    continue
            ok, image = capture.retrieve()
            if not ok or image is None:
                if time.monotonic() - last_good > s.watchdog_s:
                    return None
                continue
            last_good = time.monotonic()
            next_t = max(next_t + 1.0 / s.fps, t) if is_file else t + 1.0 / s.fps
            ts = origin_wall + timedelta(seconds=t) if is_file and not s.realtime else (
                datetime.now(UTC))
            self._deliver(Frame(image, t, ts, self._index), blocking=is_file and not s.realtime)
        return None

    def _deliver(self, frame: Frame, blocking: bool) -> None:
        self._index += 1
        self.counters["frames_in"] += 1
        self.last_frame_at = time.monotonic()
        self._set_state("ok", None)
        if blocking:  # a file read faster than real time: wait for the pipeline, lose nothing
            while not self._stop.is_set():
                try:
                    self.frames.put(frame, timeout=0.2)
                    return
                except queue.Full:
                    continue
            return
        try:
            self.frames.put_nowait(frame)
        except queue.Full:
            # Live: the newest frame matters; drop the oldest waiting one.
            try:
                self.frames.get_nowait()
                self.counters["dropped_frames"] += 1
            except queue.Empty:
                pass
            try:
                self.frames.put_nowait(frame)
            except queue.Full:
                self.counters["dropped_frames"] += 1

    def _set_state(self, state: str, detail: str | None) -> None:
        if state != self.state:
            log_event(log, "camera_state", logging.INFO if state == "ok" else logging.WARNING,
                      camera=self.name, state=state, previous=self.state, detail=detail)
        self.state, self.detail = state, detail
