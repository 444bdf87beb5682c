"""Sealed batches waiting for InfluxDB, oldest first.

An interface of its own so a disk spool (issue 3) can replace the in-memory buffer without the
writer changing: push at the tail, peek/pop at the head, a cap in lines and a policy for full.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Batch:
    lines: list[str]

    def body(self) -> bytes:
        return ("\n".join(self.lines) + "\n").encode()

    def __len__(self) -> int:
        return len(self.lines)


class BatchBuffer(Protocol):
    def push(self, batch: Batch) -> int:
        """Append; returns how many lines were dropped to stay within the cap."""
        ...

    def peek(self) -> Batch | None: ...

    def pop(self) -> None:
        """Remove the head batch (after it was written or rejected)."""
        ...

    @property
    def lines(self) -> int: ...

    def __len__(self) -> int: ...


class MemoryBatchBuffer:
    """Bounded in memory; when full the OLDEST batches go (recent data is worth more).

    The head batch is never dropped while the writer may be sending it; a drop of the head
    would only be observed as a lost acknowledgement.
    """

    def __init__(self, max_lines: int) -> None:
        self.max_lines = max_lines
        self._batches: deque[Batch] = deque()
        self._lines = 0

    def push(self, batch: Batch) -> int:
        self._batches.append(batch)
        self._lines += len(batch)
        dropped = 0
        while self._lines > self.max_lines and len(self._batches) > 2:
            victim = self._batches[1]  # keep the head: it may be in flight
            del self._batches[1]
            self._lines -= len(victim)
            dropped += len(victim)
        return dropped

    def peek(self) -> Batch | None:
        return self._batches[0] if self._batches else None

    def pop(self) -> None:
        batch = self._batches.popleft()
        self._lines -= len(batch)

    @property
    def lines(self) -> int:
        return self._lines

    def __len__(self) -> int:
        return len(self._batches)
