"""The outbox's lanes and their caps: what is dropped when a lane or the disk is full, and why."""

from __future__ import annotations

import logging
import shutil
import sqlite3
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..logs import log_event

log = logging.getLogger(__name__)

MIB = 1024 * 1024
ROW_OVERHEAD = 64  # bytes counted per row on top of payload and topic (ids, b-tree cells)
MAINTAIN_EVERY_S = 5.0  # age cap, disk floor, giving space back
NEAR_FULL = 0.9
SHED_HEADROOM = 0.02
SHED_SCAN_ROWS = 1000
VACUUM_PAGES = 2048  # pages given back to the disk per maintenance step (8 MiB)
VACUUM_MIN_PAGES = 256
LOG_EVERY_S = 30.0


@dataclass(frozen=True, slots=True)
class OutboxLimits:
    bulk_max_bytes: int = 256 * MIB
    bulk_max_age_s: float = 72 * 3600.0
    incident_max_bytes: int = 32 * MIB
    min_free_disk_bytes: int = 100 * MIB


@dataclass
class Lane:
    name: str
    table: str
    max_bytes: int
    rows: int = 0  # stored (or pending) and not acknowledged
    bytes: int = 0
    cursor: int = -1  # highest seq handed out by claim
    released: list[tuple[int, Any]] = field(default_factory=list)  # heap of (seq, message)
    acked: list[int] = field(default_factory=list)  # seqs to delete at the next commit


class RateLimitedLog:
    """Drops and failures can repeat every few seconds: one line per event per 30 s."""

    def __init__(self) -> None:
        self._last: dict[str, float] = {}
        self._since: Counter[str] = Counter()

    def __call__(self, event: str, level: int = logging.WARNING, **fields: object) -> None:
        self._since[event] += 1
        now = time.monotonic()
        if now - self._last.get(event, -LOG_EVERY_S) < LOG_EVERY_S:
            return
        self._last[event] = now
        log_event(log, event, level, occurrences=self._since.pop(event), **fields)


class LaneKeeper:
    def __init__(
        self, conn: sqlite3.Connection, incidents: Lane, bulk: Lane, limits: OutboxLimits,
        state_dir: Path, clock: Callable[[], float], counters: Counter[str],
    ) -> None:
        self._conn = conn
        self.incidents = incidents
        self.bulk = bulk
        self.limits = limits
        self.state_dir = state_dir
        self._clock = clock
        self.counters = counters
        self.near_full = False
        self.log = RateLimitedLog()
        self._last_maintain = -MAINTAIN_EVERY_S

    def count_drop(self, reason: str, kind: str, count: int = 1) -> None:
        # Reasons (cap, age, disk, incident_cap, unstored) and kinds never share a name.
        self.counters["dropped"] += count
        self.counters[f"dropped_{reason}"] += count
        self.counters[f"dropped_{kind}"] += count

    def enforce(self) -> None:
        """After each commit: size caps now, age and disk floor every few seconds."""
        bulk, incidents = self.bulk, self.incidents
        if bulk.bytes > bulk.max_bytes:
            self.shed(bulk, "cap", target_bytes=int(bulk.max_bytes * (1 - SHED_HEADROOM)))
        near_full = incidents.bytes >= incidents.max_bytes * NEAR_FULL
        if near_full != self.near_full:
            self.near_full = near_full
            log_event(log, "outbox_incident_lane_full" if near_full else "outbox_incident_lane_ok",
                      logging.WARNING if near_full else logging.INFO, rows=incidents.rows,
                      bytes=incidents.bytes, max_bytes=incidents.max_bytes)
        if incidents.bytes > incidents.max_bytes:
            self.shed(incidents, "incident_cap", target_bytes=incidents.max_bytes)
        self.maintain()

    def maintain(self, force: bool = False) -> None:
        now = time.monotonic()
        if now - self._last_maintain < MAINTAIN_EVERY_S and not force:
            return
        self._last_maintain = now
        bulk = self.bulk
        self.shed(bulk, "age", older_than=self._clock() - self.limits.bulk_max_age_s)
        try:
            free = shutil.disk_usage(self.state_dir).free
        except OSError:
            return
        deficit = self.limits.min_free_disk_bytes - free
        if deficit > 0:
            shed = self.shed(bulk, "disk", target_bytes=bulk.bytes - max(2 * deficit, MIB))
            self.give_back_space(all_pages=True)
            if not shed:
                self.log("outbox_disk_below_floor", free_bytes=free,
                         floor_bytes=self.limits.min_free_disk_bytes, bulk_rows=bulk.rows)
        elif self.incidents.rows + bulk.rows < 1000:
            self.give_back_space(all_pages=False)  # a drained backlog: shrink the file

    def give_back_space(self, all_pages: bool) -> None:
        """Return free pages of the file to the disk (after a drained backlog or shedding)."""
        try:
            free_pages = self._conn.execute("PRAGMA freelist_count").fetchone()[0]
            if free_pages < VACUUM_MIN_PAGES:
                return
            pages = free_pages if all_pages else VACUUM_PAGES
            # executescript steps the pragma to completion; execute() frees one page per call.
            self._conn.executescript(f"PRAGMA incremental_vacuum({int(pages)});")
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as exc:
            log_event(log, "outbox_vacuum_failed", logging.WARNING, error=repr(exc))

    def shed(
        self, lane: Lane, reason: str, target_bytes: int | None = None,
        older_than: float | None = None,
    ) -> int:
        """Delete the oldest rows not handed out until the lane is down to ``target_bytes`` or
        its oldest row is not older than ``older_than``. Returns the number of rows dropped."""
        freed, last, kinds = 0, None, Counter[str]()
        after = lane.cursor
        try:
            while True:
                rows = self._conn.execute(
                    f"SELECT seq, created, kind, length(payload) + length(topic) FROM "
                    f"{lane.table} WHERE seq > ? ORDER BY seq LIMIT ?", (after, SHED_SCAN_ROWS)
                ).fetchall()
                for seq, created, kind, size in rows:
                    if target_bytes is not None and lane.bytes - freed <= target_bytes:
                        break
                    if older_than is not None and created >= older_than:
                        break
                    last, freed = seq, freed + size + ROW_OVERHEAD
                    kinds[kind] += 1
                else:  # every row of this page goes: look at the next page
                    if rows:
                        after = rows[-1][0]
                        continue
                break
            if last is None:
                return 0
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.execute(f"DELETE FROM {lane.table} WHERE seq > ? AND seq <= ?",
                               (lane.cursor, last))
            self._conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            self.log("outbox_shed_failed", logging.ERROR, lane=lane.name, reason=reason,
                     error=repr(exc))
            return 0
        dropped = sum(kinds.values())
        lane.rows -= dropped
        lane.bytes -= freed
        for kind, count in kinds.items():
            self.count_drop(reason, kind, count)
        self.log(f"outbox_dropped_{reason}",
                 logging.ERROR if lane is self.incidents else logging.WARNING,
                 lane=lane.name, dropped=dropped, up_to_seq=last, lane_rows=lane.rows,
                 lane_bytes=lane.bytes, total_dropped=self.counters[f"dropped_{reason}"])
        return dropped
