"""Probe camera sources (RTSP, HTTP MJPEG, a USB index): open, take one frame, save it."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .progress import Progress, quiet

OPEN_TIMEOUT_S = 8.0


@dataclass
class CameraProbe:
    source: str | int
    ok: bool
    detail: str
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    frame: str | None = None  # the saved JPEG
    elapsed_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "ok": self.ok, "detail": self.detail,
                "width": self.width, "height": self.height, "fps": self.fps,
                "frame": self.frame, "elapsed_s": round(self.elapsed_s, 2)}


def parse_source(text: str) -> str | int:
    """"0" is the first USB camera; anything else is a URL (or a file)."""
    return int(text) if text.isdigit() else text


def probe_camera(source: str | int, out_dir: Path, name: str,
                 timeout_s: float = OPEN_TIMEOUT_S, progress: Progress = quiet) -> CameraProbe:
    import cv2

    started = time.monotonic()
    progress(f"camera {masked(source)}: opening")
    is_url = isinstance(source, str) and "://" in source
    if is_url:
        # Both bounds, or an unreachable RTSP camera holds the scan for FFmpeg's own minutes.
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(timeout_s * 1000),
                  cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(timeout_s * 1000)]
        capture = cv2.VideoCapture(source, cv2.CAP_FFMPEG, params)
    else:
        capture = cv2.VideoCapture(source)
    try:
        if not capture.isOpened():
            return _done(CameraProbe(source, False, "cannot open / 无法打开：检查地址、账号与网络 "
                                     "(check the URL, credentials and network)"), started)
        image = None
        while image is None and time.monotonic() - started < timeout_s * 2:
            ok, frame = capture.read()
            if ok and frame is not None:
                image = frame
            elif not is_url and not isinstance(source, int):
                break  # a file with no frame will not grow one
        if image is None:
            return _done(CameraProbe(source, False, "opened but sent no frame / 已连接但无画面"),
                         started)
        fps = capture.get(cv2.CAP_PROP_FPS)
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"{name}.jpg"
        if not cv2.imwrite(str(path), image):
            return _done(CameraProbe(source, False, f"cannot write {path}"), started)
        height, width = image.shape[:2]
        probe = CameraProbe(source, True, "frame saved / 已保存画面", int(width), int(height),
                            round(float(fps), 2) if fps and fps > 0 else None, str(path))
        return _done(probe, started)
    finally:
        capture.release()


def _done(probe: CameraProbe, started: float) -> CameraProbe:
    probe.elapsed_s = time.monotonic() - started
    return probe


def masked(source: str | int) -> str:
    """A URL without its password, for progress lines."""
    text = str(source)
    scheme, sep, rest = text.partition("://")
    if sep and "@" in rest.split("/", 1)[0]:
        credentials, _, host = rest.partition("@")
        return f"{scheme}://{credentials.split(':', 1)[0]}:***@{host}"
    return text
