"""Helpers for the camera tests: pipelines on rendered videos, frame iteration, an MJPEG server.

(Named ``camera_support`` because test folders share one import path.)
"""

from __future__ import annotations

from pathlib import Path

import cv2

from gridsense_devtools.camera_pipeline import frames_of, make_pipeline

__all__ = ["MjpegServer", "frames_of", "make_pipeline"]


class MjpegServer:
    """A camera on HTTP: frames of a video file as multipart MJPEG, looping, which can be made
    to stall (the connection stays open, no frame comes) and to come back."""

    def __init__(self, video: Path, fps: float = 10.0) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        frames = [cv2.imencode(".jpg", f.image)[1].tobytes() for f in frames_of(video)]
        self.sending = threading.Event()
        self.sending.set()
        self.connections = 0
        server_self = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: object) -> None:
                pass

            def do_GET(self) -> None:
                import time

                server_self.connections += 1
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                index = 0
                try:
                    while True:
                        if not server_self.sending.is_set():
                            return  # the camera hangs up and stays silent until resumed
                        jpeg = frames[index % len(frames)]
                        self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\n"
                                         + f"Content-Length: {len(jpeg)}\r\n\r\n".encode()
                                         + jpeg + b"\r\n")
                        index += 1
                        time.sleep(1 / fps)
                except OSError:
                    return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/stream.mjpg"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.sending.clear()
        self._server.shutdown()
        self._server.server_close()
