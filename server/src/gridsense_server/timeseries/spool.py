"""The disk spool: line-protocol batches InfluxDB has not taken yet, in append-only segments.

When full, the oldest segment goes. Every method takes a lock: the writer calls them from
worker threads. Layout and crash safety: docs/architecture.md.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import struct
import threading
import zlib
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from ..logs import kv

log = logging.getLogger(__name__)

_MAGIC = b"GSP1"
_HEADER = struct.Struct("<4sIII")  # magic, compressed length, CRC-32 of it, line count
_CURSOR = struct.Struct("<QQ")  # segment index, offset of the next record
_SUFFIX = ".seg"
MIN_SEGMENT_BYTES = 64 * 1024
MAX_SEGMENT_BYTES = 64 * 1024 * 1024

SpoolKey = tuple[int, int]  # (segment index, offset): where a record starts


@dataclass(frozen=True, slots=True)
class SpooledBatch:
    key: SpoolKey
    body: bytes
    lines: int
    size: int  # bytes on disk, header included


@dataclass(slots=True)
class _Segment:
    index: int
    path: Path
    bytes: int = 0
    records: int = 0
    lines: int = 0


class DiskSpool:
    def __init__(self, directory: Path, max_bytes: int, segment_bytes: int | None = None) -> None:
        if max_bytes <= 0:
            raise ValueError("the spool needs a positive size cap")
        self.directory = directory
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes or min(
            MAX_SEGMENT_BYTES, max(MIN_SEGMENT_BYTES, max_bytes // 16)
        )
        self._lock = threading.Lock()
        self._segments: deque[_Segment] = deque()
        self._offset = 0  # of the next record to send, in the oldest segment
        self._consumed_records = 0  # records and lines of the oldest segment before _offset
        self._consumed_lines = 0
        self._append: _Segment | None = None
        self._append_fd: int | None = None
        self._read_fd: tuple[int, int] | None = None  # (segment index, fd)
        self._head: SpooledBatch | None = None
        self._dir_dirty = False
        self._next_index = 1
        self.dropped_lines = 0
        self.corrupt_records = 0
        directory.mkdir(parents=True, exist_ok=True)
        self._lock_fd = _lock_directory(directory)
        self._cursor_fd = os.open(directory / "cursor", os.O_RDWR | os.O_CREAT, 0o600)
        self._open()

    # -- state ---------------------------------------------------------------------------------

    @property
    def lines(self) -> int:
        with self._lock:
            return sum(s.lines for s in self._segments) - self._consumed_lines

    @property
    def records(self) -> int:
        with self._lock:
            return self._records()

    @property
    def bytes(self) -> int:
        with self._lock:
            return self._bytes()

    def __len__(self) -> int:
        return self.records

    def _records(self) -> int:
        return sum(s.records for s in self._segments) - self._consumed_records

    def _bytes(self) -> int:
        return sum(s.bytes for s in self._segments)

    # -- writing -------------------------------------------------------------------------------

    def push(self, body: bytes, lines: int) -> tuple[SpoolKey | None, int]:
        """Append a batch (not yet durable: call sync()). Returns its key (None if it alone
        exceeds the cap) and how many older lines were dropped to make room."""
        compressed = zlib.compress(body, 1)
        record = _HEADER.pack(_MAGIC, len(compressed), zlib.crc32(compressed), lines) + compressed
        with self._lock:
            if len(record) > self.max_bytes:
                self.dropped_lines += lines
                return None, lines
            dropped = 0
            while self._bytes() + len(record) > self.max_bytes:
                if self._segments[0] is self._append:
                    self._roll()
                dropped += self._drop_oldest()
            segment = self._append
            if segment is None or (segment.bytes and
                                   segment.bytes + len(record) > self.segment_bytes):
                segment = self._roll()
            assert self._append_fd is not None
            offset = segment.bytes
            view = memoryview(record)
            while view:
                view = view[os.write(self._append_fd, view):]
            segment.bytes += len(record)
            segment.records += 1
            segment.lines += lines
            return (segment.index, offset), dropped

    def sync(self) -> None:
        """Make every pushed record durable (fsync), before anything is acknowledged."""
        with self._lock:
            if self._append_fd is not None:
                os.fsync(self._append_fd)
            if self._dir_dirty:
                _fsync_dir(self.directory)
                self._dir_dirty = False

    def _roll(self) -> _Segment:
        if self._append_fd is not None:
            os.fsync(self._append_fd)  # sync() only covers the newest segment
            os.close(self._append_fd)
        segment = _Segment(self._next_index, self.directory / f"{self._next_index:016d}{_SUFFIX}")
        self._next_index += 1
        self._append_fd = os.open(segment.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND,
                                  0o600)
        self._append = segment
        self._segments.append(segment)
        self._dir_dirty = True
        return segment

    def _drop_oldest(self) -> int:
        segment = self._segments[0]
        lost = segment.lines - self._consumed_lines
        self.dropped_lines += lost
        self._remove_head()
        return lost

    # -- reading -------------------------------------------------------------------------------

    def peek(self) -> SpooledBatch | None:
        """The oldest record not yet taken, or None when the spool is empty."""
        with self._lock:
            while self._head is None and self._segments:
                segment = self._segments[0]
                if self._offset >= segment.bytes:
                    self._retire_head()
                    continue
                self._head = self._read(segment)
            return self._head

    def pop(self, key: SpoolKey) -> bool:
        """Forget the record at ``key`` once InfluxDB took it. False when it is no longer the
        oldest record (dropped for the cap meanwhile): nothing to do then."""
        with self._lock:
            if not self._segments or key != (self._segments[0].index, self._offset):
                return False
            head = self._head if self._head is not None and self._head.key == key else None
            if head is None:
                head = self._read(self._segments[0])
                if head is None or head.key != key:
                    return False
            self._head = None
            self._offset += head.size
            self._consumed_records += 1
            self._consumed_lines += head.lines
            os.pwrite(self._cursor_fd, _CURSOR.pack(key[0], self._offset), 0)
            if self._offset >= self._segments[0].bytes:
                self._retire_head()
            return True

    def _read(self, segment: _Segment) -> SpooledBatch | None:
        fd = self._reader(segment)
        header = os.pread(fd, _HEADER.size, self._offset)
        if len(header) == _HEADER.size:
            magic, length, crc, lines = _HEADER.unpack(header)
            compressed = os.pread(fd, length, self._offset + _HEADER.size)
            if magic == _MAGIC and len(compressed) == length and zlib.crc32(compressed) == crc:
                body = zlib.decompress(compressed)
                return SpooledBatch((segment.index, self._offset), body, lines,
                                    _HEADER.size + length)
        # Corrupt in the middle (a disk error; torn tails are cut at open): skip the rest of
        # this segment, which cannot be framed any more, and say what was lost.
        self.corrupt_records += 1
        lost = segment.lines - self._consumed_lines
        self.dropped_lines += lost
        log.error(kv("spool_record_corrupt", segment=segment.path.name, offset=self._offset,
                     lines_lost=lost))
        self._consumed_lines = segment.lines
        self._consumed_records = segment.records
        self._offset = segment.bytes
        return None

    def _reader(self, segment: _Segment) -> int:
        if self._read_fd is not None and self._read_fd[0] == segment.index:
            return self._read_fd[1]
        self._close_reader()
        fd = os.open(segment.path, os.O_RDONLY)
        self._read_fd = (segment.index, fd)
        return fd

    def _close_reader(self) -> None:
        if self._read_fd is not None:
            os.close(self._read_fd[1])
            self._read_fd = None

    def _retire_head(self) -> None:
        """The oldest segment is fully sent: delete it — even the one being appended to (the
        next push starts a new segment), so a drained spool takes no disk."""
        if self._segments[0] is self._append and self._append_fd is not None:
            os.close(self._append_fd)
            self._append_fd = None
            self._append = None
        self._remove_head()

    def _remove_head(self) -> None:
        segment = self._segments.popleft()
        if self._read_fd is not None and self._read_fd[0] == segment.index:
            self._close_reader()
        segment.path.unlink(missing_ok=True)
        self._offset = self._consumed_records = self._consumed_lines = 0
        self._head = None
        self._dir_dirty = True

    # -- opening and closing -------------------------------------------------------------------

    def _open(self) -> None:
        indexed = []
        for path in self.directory.glob(f"*{_SUFFIX}"):
            with contextlib.suppress(ValueError):
                indexed.append((int(path.stem), path))
        indexed.sort()
        cursor = os.pread(self._cursor_fd, _CURSOR.size, 0)
        cursor_index, cursor_offset = (
            _CURSOR.unpack(cursor) if len(cursor) == _CURSOR.size else (0, 0)
        )
        self._next_index = max([cursor_index, *(i for i, _ in indexed)]) + 1
        for position, (index, path) in enumerate(indexed):
            if index < cursor_index:
                path.unlink()  # fully sent before the restart
                continue
            segment = _Segment(index, path)
            _scan(segment, last=position == len(indexed) - 1)
            if segment.records == 0:
                path.unlink()
                continue
            self._segments.append(segment)
        if self._segments and self._segments[0].index == cursor_index:
            self._skip_to(cursor_offset)
        if self._segments:
            log.info(kv("spool_opened", directory=self.directory, segments=len(self._segments),
                        records=self._records(), bytes=self._bytes()))

    def _skip_to(self, cursor_offset: int) -> None:
        """Count the records of the oldest segment the cursor says were already sent."""
        segment = self._segments[0]
        with segment.path.open("rb") as handle:
            while self._offset < min(cursor_offset, segment.bytes):
                header = handle.read(_HEADER.size)
                _magic, length, _crc, lines = _HEADER.unpack(header)
                handle.seek(length, os.SEEK_CUR)
                self._offset += _HEADER.size + length
                self._consumed_records += 1
                self._consumed_lines += lines

    def close(self) -> None:
        with self._lock:
            if self._append_fd is not None:
                os.fsync(self._append_fd)
                os.close(self._append_fd)
                self._append_fd = None
                self._append = None
            self._close_reader()
            os.close(self._cursor_fd)
            os.close(self._lock_fd)  # releases the lock


def _scan(segment: _Segment, last: bool) -> None:
    """Count a segment's records; cut off a torn or corrupt tail (CRC-checked in the last
    segment, the only one a crash can have left half-written)."""
    size = segment.path.stat().st_size
    offset = 0
    with segment.path.open("rb") as handle:
        while offset + _HEADER.size <= size:
            magic, length, crc, lines = _HEADER.unpack(handle.read(_HEADER.size))
            if magic != _MAGIC or offset + _HEADER.size + length > size:
                break
            if last:
                if zlib.crc32(handle.read(length)) != crc:
                    break
            else:
                handle.seek(length, os.SEEK_CUR)
            offset += _HEADER.size + length
            segment.records += 1
            segment.lines += lines
    if offset < size:
        log.warning(kv("spool_tail_truncated", segment=segment.path.name, valid_bytes=offset,
                       bytes=size))
        os.truncate(segment.path, offset)
    segment.bytes = offset


def _lock_directory(directory: Path) -> int:
    """One process per spool: two appending to the same segments would corrupt them."""
    fd = os.open(directory / "lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise RuntimeError(f"the spool {directory} is in use by another process "
                           "(two servers sharing a state folder? set influxdb.spool_dir)") from None
    return fd


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
