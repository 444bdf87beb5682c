"""Where outgoing messages wait: on disk, in two lanes, until the server confirms them (or,
with an older server, until the broker's PUBACK)."""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import os
import sqlite3
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..logs import log_event
from .outbox_api import BULK, INCIDENT, MessageFactory, OutboundMessage, Outbox
from .outbox_caps import ROW_OVERHEAD, Lane, LaneKeeper, OutboxLimits
from .outbox_db import files_size, lock_state_dir, open_outbox_db

__all__ = ["BULK", "INCIDENT", "MessageFactory", "OutboundMessage", "Outbox", "OutboxLimits",
           "SqliteOutbox"]

log = logging.getLogger(__name__)

COMMIT_WINDOW_S = 0.5  # a bulk row is on disk at most this long after submit
COMMIT_ROWS = 200  # ... or as soon as this many rows wait
ACK_WINDOW_S = 1.0  # deletes of acknowledged rows may wait a little longer
ACK_ROWS = 256
RETRY_S = 2.0  # after a failed commit (disk full, I/O error)
MAX_PENDING = 20_000  # rows held in memory while commits fail; beyond, the oldest bulk go
FLAG_OFFLINE, FLAG_RETAIN = 1, 2
SERVER_CONFIRMS_KEY = "server_confirms"  # meta: 1 once the server has confirmed messages


_ROW = "seq, created, flags, qos, kind, event_id, topic, payload"


def _message(row: tuple[Any, ...], offline: bool = False) -> OutboundMessage:
    seq, created, flags, qos, kind, event_id, topic, payload = row
    return OutboundMessage(
        topic=topic, payload=payload, kind=kind, event_id=event_id, seq=seq, qos=qos,
        retain=bool(flags & FLAG_RETAIN), created=created,
        offline=offline or bool(flags & FLAG_OFFLINE),
    )


def _merged(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for first, last in sorted(ranges):
        if out and first <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(last, out[-1][1]))
        else:
            out.append((first, last))
    return out


def _ranges(seqs: list[int]) -> list[tuple[int, int]]:
    """Acks arrive almost in order: delete them as a few BETWEEN ranges, not row by row."""
    out: list[tuple[int, int]] = []
    for seq in sorted(seqs):
        if out and seq == out[-1][1] + 1:
            out[-1] = (out[-1][0], seq)
        else:
            out.append((seq, seq))
    return out


class SqliteOutbox:
    def __init__(
        self, state_dir: Path, limits: OutboxLimits | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.limits = limits or OutboxLimits()
        self._clock = clock
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._lock_fd = lock_state_dir(self.state_dir)  # raises StateDirBusy
        try:
            self._conn, self._next = open_outbox_db(self.state_dir)
        except BaseException:
            os.close(self._lock_fd)
            raise
        self._lanes = (
            Lane("incident", "incident_lane", self.limits.incident_max_bytes),
            Lane("bulk", "bulk_lane", self.limits.bulk_max_bytes),
        )
        for lane in self._lanes:
            rows, size = self._conn.execute(
                f"SELECT count(*), coalesce(sum(length(payload) + length(topic)), 0) "
                f"FROM {lane.table}"
            ).fetchone()
            lane.rows, lane.bytes = rows, size + rows * ROW_OVERHEAD
        self._pending: list[OutboundMessage] = []
        self._confirmed: list[tuple[int, int]] = []  # settled by the server: to delete
        self._server_confirms = self._conn.execute(
            "SELECT value FROM meta WHERE key = ?", (SERVER_CONFIRMS_KEY,)).fetchone() is not None
        self._timer: asyncio.TimerHandle | None = None
        self._deadline = 0.0
        self.on_stored: Callable[[], None] = lambda: None
        self._link_up = False
        self.counters: Counter[str] = Counter(
            dict.fromkeys(("submitted", "acked", "confirmed", "resent", "released", "commits",
                           "commit_errors",
                           "dropped", "dropped_cap", "dropped_age", "dropped_disk",
                           "dropped_incident_cap", "dropped_unstored", "dropped_telemetry",
                           "dropped_health", "dropped_incident"), 0)
        )
        self._keeper = LaneKeeper(self._conn, *self._lanes, self.limits, self.state_dir,
                                  clock, self.counters)
        self._keeper.enforce()

    # ---- the producer side ----

    def submit(self, make: MessageFactory) -> OutboundMessage:
        seq = self._next
        message = make(seq)  # if building fails, the number is not used
        if message.seq != seq:
            raise ValueError(f"message built with seq {message.seq}, expected {seq}")
        message = replace(message, created=self._clock(), offline=not self._link_up)
        self._next = seq + 1
        self._pending.append(message)
        lane = self._lanes[message.lane]
        lane.rows += 1
        lane.bytes += message.size
        self.counters["submitted"] += 1
        if message.lane == INCIDENT:
            self._commit(durable=True)
        elif len(self._pending) >= COMMIT_ROWS:
            self._commit()
        else:
            self._schedule(COMMIT_WINDOW_S)
        return message

    @property
    def link_up(self) -> bool:
        return self._link_up

    @link_up.setter
    def link_up(self, up: bool) -> None:
        if up and not self._link_up:
            self._commit()
            try:  # a checkpoint fsyncs the WAL: the backlog is on stable storage before sending
                self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except sqlite3.Error as exc:
                self._keeper.log("outbox_sync_failed", logging.ERROR, error=repr(exc))
        self._link_up = up

    @property
    def last_seq(self) -> int:
        """The latest number assigned (0 before the first message): what status messages carry."""
        return max(0, self._next - 1)

    @property
    def next_seq(self) -> int:
        return self._next

    @property
    def depth(self) -> int:
        """Messages not yet acknowledged by the broker (stored, pending, or in flight)."""
        return sum(lane.rows for lane in self._lanes)

    # ---- the uplink side ----

    def claim(self, limit: int) -> list[OutboundMessage]:
        out: list[OutboundMessage] = []
        for lane in self._lanes:
            while lane.released and len(out) < limit:
                out.append(heapq.heappop(lane.released)[1])
            room = limit - len(out)
            if room <= 0:
                break
            rows = self._conn.execute(
                f"SELECT {_ROW} FROM {lane.table} WHERE seq > ? ORDER BY seq LIMIT ?",
                (lane.cursor, room)
            ).fetchall()
            out.extend(_message(row) for row in rows)
            if rows:
                lane.cursor = rows[-1][0]
        return out

    def resend(self, seqs: list[int]) -> list[int]:
        """Hand these stored messages out again (the server has not confirmed them in time);
        returns those still stored (a cap may have dropped the others)."""
        found: list[int] = []
        for lane in self._lanes:
            for start in range(0, len(seqs), 500):
                chunk = seqs[start:start + 500]
                rows = self._conn.execute(
                    f"SELECT {_ROW} FROM {lane.table} "
                    f"WHERE seq IN ({','.join('?' * len(chunk))})", chunk).fetchall()
                for row in rows:
                    heapq.heappush(lane.released, (row[0], _message(row, offline=True)))
                    found.append(row[0])
        self.counters["resent"] += len(found)
        return found

    def confirm(self, ranges: list[tuple[int, int]]) -> None:
        """The server has settled these: delete them (batched), wherever they are."""
        self._confirmed.extend(ranges)
        if len(self._confirmed) >= ACK_ROWS:
            self._commit()
        else:
            self._schedule(ACK_WINDOW_S)

    @property
    def server_confirms(self) -> bool:
        """The server has confirmed messages before: from now on it decides what is deleted."""
        return self._server_confirms

    def expect_server_confirms(self) -> None:
        """Remembered across restarts, so no message is deleted on a PUBACK alone again."""
        if not self._server_confirms:
            self._conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, 1)",
                               (SERVER_CONFIRMS_KEY,))
            self._server_confirms = True

    def ack(self, message: OutboundMessage) -> None:
        lane = self._lanes[message.lane]
        lane.acked.append(message.seq)
        lane.rows -= 1
        lane.bytes -= message.size
        self.counters["acked"] += 1
        if sum(len(lane.acked) for lane in self._lanes) >= ACK_ROWS:
            self._commit()
        else:
            self._schedule(ACK_WINDOW_S)

    def release(self, message: OutboundMessage) -> None:
        heapq.heappush(self._lanes[message.lane].released, (message.seq, message))
        self.counters["released"] += 1

    # ---- committing ----

    def flush(self) -> None:
        """Commit what is pending now (and run maintenance if it is due)."""
        self._commit()

    def maintain(self) -> None:
        """Apply the age cap and the free-disk floor now (they run every few seconds anyway)."""
        self._commit()
        self._keeper.maintain(force=True)

    def close(self) -> None:
        self._commit()
        try:
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as exc:
            log_event(log, "outbox_checkpoint_failed", logging.WARNING, error=repr(exc))
        self._conn.close()
        os.close(self._lock_fd)
        log_event(log, "outbox_closed", next_seq=self._next, depth=self.depth)

    def _schedule(self, delay: float) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no event loop: the owner calls flush()
        when = loop.time() + delay
        if self._timer is not None:
            if self._deadline <= when:
                return
            self._timer.cancel()
        self._deadline = when
        self._timer = loop.call_at(when, self._commit)

    def _commit(self, durable: bool = False) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        rows = self._pending
        if rows or self._confirmed or any(lane.acked for lane in self._lanes):
            # Rows that may be sent right away are fsynced first (see the module docstring).
            if not self._write(rows, durable or (self._link_up and bool(rows))):
                self._bound_pending()
                self._schedule(RETRY_S)
                return
            self._pending = []
            self._confirmed = []
            for lane in self._lanes:
                lane.acked.clear()
            self.counters["commits"] += 1
        self._keeper.enforce()
        if rows:
            self.on_stored()

    def _write(self, rows: list[OutboundMessage], durable: bool) -> bool:
        conn = self._conn
        confirmed = _merged(self._confirmed)
        deleted = [(0, 0)] * len(self._lanes)  # rows, bytes: applied once committed
        try:
            if durable:
                conn.execute("PRAGMA synchronous = FULL")
            conn.execute("BEGIN IMMEDIATE")
            for index, lane in enumerate(self._lanes):
                values = [
                    (m.seq, m.created, (FLAG_OFFLINE if m.offline else 0)
                     | (FLAG_RETAIN if m.retain else 0), m.qos, m.kind, m.event_id, m.topic,
                     m.payload)
                    for m in rows if m.lane == index
                ]
                if values:
                    conn.executemany(
                        f"INSERT INTO {lane.table} (seq, created, flags, qos, kind, event_id, "
                        f"topic, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", values,
                    )
                if lane.acked:
                    conn.executemany(f"DELETE FROM {lane.table} WHERE seq BETWEEN ? AND ?",
                                     _ranges(lane.acked))
                # After the PUBACK deletes, which were counted when acked: a row is counted
                # once whichever deletes it.
                sizes = [size for first, last in confirmed for (size,) in conn.execute(
                    f"DELETE FROM {lane.table} WHERE seq BETWEEN ? AND ? "
                    f"RETURNING length(payload) + length(topic)", (first, last)).fetchall()]
                deleted[index] = (len(sizes), sum(sizes) + len(sizes) * ROW_OVERHEAD)
            if rows:
                conn.execute("UPDATE meta SET value = ? WHERE key = 'next_seq'", (self._next,))
            conn.execute("COMMIT")
            for lane, (count, size) in zip(self._lanes, deleted, strict=True):
                lane.rows -= count
                lane.bytes -= size
            self.counters["confirmed"] += sum(count for count, _ in deleted)
            return True
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            self.counters["commit_errors"] += 1
            self._keeper.log("outbox_commit_failed", logging.ERROR, error=repr(exc),
                             pending=len(rows), retry_in_s=RETRY_S)
            return False
        finally:
            if durable:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("PRAGMA synchronous = NORMAL")

    def _bound_pending(self) -> None:
        """Commits keep failing: memory stays bounded; the oldest bulk rows go first."""
        excess = len(self._pending) - MAX_PENDING
        if excess <= 0:
            return
        kept: list[OutboundMessage] = []
        for message in self._pending:
            if excess > 0 and message.lane == BULK:
                excess -= 1
                lane = self._lanes[BULK]
                lane.rows -= 1
                lane.bytes -= message.size
                self._keeper.count_drop("unstored", message.kind)
            else:
                kept.append(message)
        self._pending = kept

    # ---- health ----

    def stats(self) -> dict[str, int]:
        """Depth per lane, age of the oldest unacknowledged message, bytes, drops."""
        self._keeper.maintain()
        oldest: float | None = self._pending[0].created if self._pending else None
        for lane in self._lanes:
            try:
                row = self._conn.execute(
                    f"SELECT created FROM {lane.table} ORDER BY seq LIMIT 1"
                ).fetchone()
            except sqlite3.Error:
                row = None
            if row is not None:
                oldest = row[0] if oldest is None else min(oldest, row[0])
        incidents, bulk = self._lanes
        return {
            "incident_depth": incidents.rows,
            "bulk_depth": bulk.rows,
            "incident_bytes": incidents.bytes,
            "bulk_bytes": bulk.bytes,
            "oldest_age_s": max(0, int(self._clock() - oldest)) if oldest is not None else 0,
            "bytes_on_disk": files_size(self.state_dir),
            "incident_lane_full": int(self._keeper.near_full),
            "next_seq": self._next,
            **self.counters,
        }
