"""Incident snapshots (JPEGs from cameras): files on disk, capped, oldest evicted when full.

Blocking: call from a worker thread.
"""

from __future__ import annotations

import contextlib
import heapq
import logging
import os
import threading
from pathlib import Path

from gridsense_protocol import is_valid_id

from ..counters import Counters
from ..logs import kv

log = logging.getLogger(__name__)

SUFFIX = ".jpg"


class SnapshotStore:
    def __init__(self, folder: Path, max_bytes: int, counters: Counters) -> None:
        self.folder = folder
        self.max_bytes = max_bytes
        self.counters = counters
        self._lock = threading.Lock()
        folder.mkdir(parents=True, exist_ok=True)
        # (mtime, path) of every stored file: the eviction order; rebuilt at start-up.
        self._files: list[tuple[float, str, int]] = []
        self.bytes = 0
        for path in folder.glob(f"*/*{SUFFIX}"):
            stat = path.stat()
            self._files.append((stat.st_mtime, str(path), stat.st_size))
            self.bytes += stat.st_size
        heapq.heapify(self._files)

    def path(self, gateway: str, event_id: str) -> Path:
        if not (is_valid_id(gateway) and is_valid_id(event_id)):
            raise ValueError(f"not a gateway/event id pair: {gateway!r}/{event_id!r}")
        return self.folder / gateway / f"{event_id}{SUFFIX}"

    def save(self, gateway: str, event_id: str, jpeg: bytes) -> Path:
        target = self.path(gateway, event_id)
        target.parent.mkdir(exist_ok=True)
        tmp = target.with_suffix(".tmp")
        with open(tmp, "wb") as handle:
            handle.write(jpeg)
            handle.flush()
            os.fsync(handle.fileno())
        replaced = target.stat().st_size if target.exists() else 0
        os.replace(tmp, target)
        directory = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        with self._lock:
            self.bytes += len(jpeg) - replaced
            if not replaced:
                heapq.heappush(self._files, (target.stat().st_mtime, str(target), len(jpeg)))
            self._evict(keep=str(target))
        self.counters.inc("snapshots.stored")
        return target

    def _evict(self, keep: str) -> None:
        held = None
        while self.bytes > self.max_bytes and self._files:
            entry = heapq.heappop(self._files)
            _mtime, name, size = entry
            if name == keep:  # the file just stored stays, even alone over the cap
                held = entry
                continue
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name)
            self.bytes -= size
            self.counters.inc("snapshots.evicted")
            log.warning(kv("snapshot_evicted", file=name, bytes=size, total=self.bytes,
                           cap=self.max_bytes))
        if held is not None:
            heapq.heappush(self._files, held)

    def find(self, gateway: str, event_ids: list[str]) -> Path | None:
        """The first of ``event_ids`` that has a snapshot stored."""
        for event_id in event_ids:
            try:
                path = self.path(gateway, event_id)
            except ValueError:
                continue
            if path.is_file():
                return path
        return None
