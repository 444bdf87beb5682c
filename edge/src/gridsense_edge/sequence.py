"""Per-gateway message sequence numbers that keep increasing across restarts.

Writing the counter to disk on every message would cost an fsync per message on an SD card.
Instead the allocator *reserves* a block: the file holds the first number NOT yet handed out
under the current reservation (``reserved``). Numbers below it are issued from memory; when
they run out, the next block is reserved (file written atomically: temp file, fsync, rename,
fsync of the folder) before any number of it is issued.

Trade-off: after a crash or kill -9 the agent restarts at ``reserved``, so up to ``block - 1``
numbers are never used. The server must therefore treat a gap in ``seq`` as "maybe lost",
not "certainly lost" — the durable outbox is what guarantees delivery; seq orders and detects.
A clean stop writes the exact next number, so a graceful restart leaves no gap.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

from .logs import log_event

log = logging.getLogger(__name__)

DEFAULT_BLOCK = 1000
FILE_NAME = "seq"


class SequenceAllocator:
    """Thread-safe: the MQTT network thread stamps birth and will messages too."""

    def __init__(self, state_dir: Path, block: int = DEFAULT_BLOCK) -> None:
        if block < 1:
            raise ValueError("block must be at least 1")
        self.path = Path(state_dir) / FILE_NAME
        self.block = block
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._next = self._load()
        self._reserved = self._next
        self._reserve()

    def _load(self) -> int:
        try:
            text = self.path.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            return 0
        except (OSError, UnicodeDecodeError) as exc:
            return self._recover(f"unreadable: {exc}")
        if not text.isdigit():
            return self._recover(f"not a number: {text[:40]!r}")
        return int(text)

    def _recover(self, problem: str) -> int:
        # Continue above anything a counter could have reached: milliseconds since the epoch
        # exceed any count issued at under 1000 messages/s. Jumps forward, never back.
        floor = int(time.time() * 1000)
        log_event(log, "sequence_file_damaged", logging.ERROR, path=str(self.path),
                  problem=problem, continue_at=floor)
        return floor

    def _write(self, value: int) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w", encoding="ascii") as handle:
            handle.write(f"{value}\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # make the rename itself durable
        finally:
            os.close(dir_fd)

    def _reserve(self) -> None:
        self._write(self._next + self.block)
        self._reserved = self._next + self.block

    def next(self) -> int:
        with self._lock:
            if self._next >= self._reserved:
                self._reserve()
            value = self._next
            self._next += 1
            return value

    @property
    def peek(self) -> int:
        """The number the next call to ``next`` returns."""
        with self._lock:
            return self._next

    def close(self) -> None:
        """Record the exact next number so a clean restart continues without a gap."""
        with self._lock:
            self._write(self._next)
            self._reserved = self._next
