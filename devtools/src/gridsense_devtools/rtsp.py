"""A real RTSP camera on loopback, made of Debian packages, for the capture and discovery tests.

Debian's ffmpeg cannot serve RTSP to a player: ``-rtsp_flags listen`` belongs to its RTSP
*demuxer* (it receives a stream that somebody pushes); on an output it is ignored and ffmpeg
dials out as a publisher. So the camera is two processes, as inside an IP camera: ffmpeg is the
encoder, pushing a looping clip (ANNOUNCE/RECORD), and Debian's ``rtsp-server-perl`` is the RTSP
server that players (OpenCV's FFmpeg backend here) DESCRIBE, SETUP and PLAY, RTP over UDP.
``stop_stream``/``start_stream`` stop and restart the encoder; ``power_cut``/``power_on`` kill
the whole camera and bring it back on the same port.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
from pathlib import Path

import numpy as np

from gridsense_devtools.ports import free_port
from gridsense_devtools.processes import spawn, stop_process, wait_until

SERVER_BIN = "rtsp-server-perl"  # Debian package rtsp-server-perl
FFMPEG_BIN = "ffmpeg"  # Debian package ffmpeg


def write_clip(path: Path, width: int = 160, height: int = 120, fps: int = 10,
               frames: int = 30) -> Path:
    """A small MPEG-4 Part 2 clip (OpenCV's ``mp4v``: RTP carries it as MP4V-ES, so ffmpeg can
    stream it with ``-c copy``): a green square crossing a grey frame."""
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {path} (mp4v)")
    try:
        for i in range(frames):
            frame = np.full((height, width, 3), 90, np.uint8)
            x = (i * 4) % max(1, width - 20)
            cv2.rectangle(frame, (x, height // 3), (x + 20, height // 3 + 40), (0, 200, 0), -1)
            writer.write(frame)
    finally:
        writer.release()
    return path


def missing_tools() -> list[str]:
    return [tool for tool in (SERVER_BIN, FFMPEG_BIN) if shutil.which(tool) is None]


class RtspCamera:
    """``url`` plays the looping clip once ``start()`` returns."""

    def __init__(self, clip: Path, log_dir: Path, path: str = "cam") -> None:
        self.clip = clip
        self.log_dir = log_dir
        self.client_port = free_port()
        self.source_port = free_port()
        self.rtp_port = free_port()
        self.url = f"rtsp://127.0.0.1:{self.client_port}/{path}"
        self._publish_url = f"rtsp://127.0.0.1:{self.source_port}/{path}"
        self._server: subprocess.Popen[bytes] | None = None
        self._encoder: subprocess.Popen[bytes] | None = None
        self.encoder_starts = 0

    def start(self) -> RtspCamera:
        """The server, then the encoder; the url plays when this returns."""
        missing = missing_tools()
        if missing:
            raise RuntimeError(f"not installed: {', '.join(missing)} (apt-get install -y "
                               "ffmpeg rtsp-server-perl; scripts/test installs them)")
        self._server = spawn(
            [SERVER_BIN, "--clientport", str(self.client_port), "--serverport",
             str(self.source_port), "--client_listen_address", "127.0.0.1",
             "--source_listen_address", "127.0.0.1", "--rtp_start_port", str(self.rtp_port),
             "--loglevel", "2"], self.log_dir / "rtsp-server.log")
        wait_until(lambda: _listening(self.client_port) and _listening(self.source_port), 20,
                   "rtsp-server-perl listening")
        self.start_stream()
        return self

    def start_stream(self) -> None:
        self._encoder = spawn(
            [FFMPEG_BIN, "-hide_banner", "-loglevel", "warning", "-re", "-stream_loop", "-1",
             "-i", str(self.clip), "-c", "copy", "-f", "rtsp", self._publish_url],
            self.log_dir / f"ffmpeg-{self.encoder_starts}.log")
        self.encoder_starts += 1
        wait_until(self.playable, 20, f"{self.url} described by the server")

    def stop_stream(self) -> None:
        """The encoder stops (SIGTERM: ffmpeg tears its session down, the server drops it)."""
        if self._encoder is not None:
            stop_process(self._encoder)
            self._encoder = None
        wait_until(lambda: not self.playable(), 20, f"{self.url} gone from the server")

    def power_cut(self) -> None:
        """kill -9 of encoder and server, as when the camera loses power. (Killing only the
        encoder is not a state a real camera has, and rtsp-server-perl keeps a killed
        publisher's mount and refuses its return with 403.)"""
        for process in (self._encoder, self._server):
            if process is not None:
                stop_process(process, signal.SIGKILL)
        self._encoder = self._server = None

    def power_on(self) -> None:
        """The camera back on the same address and port."""
        self.start()

    def playable(self) -> bool:
        """The server answers DESCRIBE with 200: a publisher is pushing the stream."""
        try:
            with socket.create_connection(("127.0.0.1", self.client_port), timeout=2) as conn:
                conn.sendall(f"DESCRIBE {self.url} RTSP/1.0\r\nCSeq: 1\r\n"
                             "Accept: application/sdp\r\n\r\n".encode())
                return conn.recv(64).startswith(b"RTSP/1.0 200")
        except OSError:
            return False

    def stop(self) -> None:
        for process in (self._encoder, self._server):
            if process is not None:
                stop_process(process)
        self._encoder = self._server = None

    def __enter__(self) -> RtspCamera:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False
