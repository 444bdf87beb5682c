"""A named daemon thread running ``_run`` until ``stop``: the shape of capture and pipeline."""

from __future__ import annotations

import threading


class WorkerThread:
    role = "worker"  # thread name prefix: capture-<camera>, pipeline-<camera>

    def __init__(self, name: str) -> None:
        self.name = name
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"{self.role}-{self.name}",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        raise NotImplementedError
