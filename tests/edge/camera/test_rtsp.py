"""Cameras on a real RTSP server on loopback (Debian's ffmpeg pushing into rtsp-server-perl):
the agent's capture reads it, rides over the stream going away and coming back, and discovery
saves a frame from it (and from an MJPEG camera)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import pytest
from camera_support import MjpegServer

from gridsense_devtools.processes import wait_until
from gridsense_devtools.rtsp import RtspCamera, write_clip
from gridsense_edge.discover.cameras import probe_camera
from gridsense_edge.drivers.camera.capture import CaptureSettings, CaptureWorker


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    return write_clip(tmp_path / "clip.mp4")


@pytest.fixture
def camera(clip: Path, tmp_path: Path) -> Iterator[RtspCamera]:
    with RtspCamera(clip, tmp_path) as cam:
        yield cam


def test_capture_reads_rtsp_and_reconnects_after_the_stream_restarts(
        camera: RtspCamera) -> None:
    worker = CaptureWorker("door", CaptureSettings(source=camera.url, fps=5, watchdog_s=2,
                                                   reconnect_max_s=2))
    worker.start()
    try:
        wait_until(lambda: worker.counters["frames_in"] >= 5, 30, "frames over RTSP")
        frame = worker.frames.get(timeout=5)
        assert frame.image.shape == (120, 160, 3)

        camera.stop_stream()  # the stream stops; the camera's RTSP server stays up
        wait_until(lambda: worker.state == "down", 30, "the watchdog noticing the silence")
        before = worker.counters["frames_in"]
        camera.start_stream()
        wait_until(lambda: worker.counters["frames_in"] >= before + 5, 60,
                   "frames again after the stream came back")
        assert worker.state == "ok"
        reconnects = worker.counters["reconnects"]
        assert reconnects >= 1

        camera.power_cut()  # kill -9 of the whole camera: the port refuses, then comes back
        wait_until(lambda: worker.state == "down", 30, "the watchdog noticing the dead camera")
        before = worker.counters["frames_in"]
        camera.power_on()
        wait_until(lambda: worker.counters["frames_in"] >= before + 5, 60,
                   "frames again after the camera came back")
        assert worker.counters["reconnects"] > reconnects
    finally:
        worker.stop()


def test_discovery_saves_a_frame_from_rtsp_and_mjpeg(camera: RtspCamera, clip: Path,
                                                     tmp_path: Path) -> None:
    out = tmp_path / "frames"
    rtsp = probe_camera(camera.url, out, "camera-0")
    assert rtsp.ok, rtsp.detail
    assert (rtsp.width, rtsp.height) == (160, 120)
    saved = cv2.imread(str(rtsp.frame))
    assert saved is not None and saved.shape == (120, 160, 3)

    mjpeg_server = MjpegServer(clip)
    try:
        mjpeg = probe_camera(mjpeg_server.url, out, "camera-1")
    finally:
        mjpeg_server.close()
    assert mjpeg.ok, mjpeg.detail
    assert Path(str(mjpeg.frame)).name == "camera-1.jpg" and (mjpeg.width, mjpeg.height) == (
        160, 120)


def test_discovery_reports_a_camera_that_sends_nothing(camera: RtspCamera,
                                                       tmp_path: Path) -> None:
    silent = probe_camera(camera.url.replace("/cam", "/other"), tmp_path, "camera-0",
                          timeout_s=3)
    assert not silent.ok and silent.frame is None
    assert "cannot open" in silent.detail or "no frame" in silent.detail
