"""The outbox's SQLite file: opening it, its schema, and what to do when it is damaged."""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import time
from pathlib import Path

from ..logs import log_event

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
FILE_NAME = "outbox.db"
LOCK_NAME = "outbox.lock"
LEGACY_SEQ_FILE = "seq"  # the block-reserving counter of earlier versions
LANE_TABLES = ("incident_lane", "bulk_lane")

_COLUMNS = """(
    seq INTEGER PRIMARY KEY,
    created REAL NOT NULL,
    flags INTEGER NOT NULL,
    qos INTEGER NOT NULL,
    kind TEXT NOT NULL,
    event_id TEXT NOT NULL,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL
)"""

_SCHEMA = [
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID",
    *(f"CREATE TABLE IF NOT EXISTS {table} {_COLUMNS}" for table in LANE_TABLES),
    f"PRAGMA user_version = {SCHEMA_VERSION}",
]


def _connect(path: Path) -> sqlite3.Connection:
    # isolation_level=None: no implicit transactions; the outbox says BEGIN/COMMIT itself.
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA auto_vacuum = INCREMENTAL")  # only takes effect on a new file
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise sqlite3.DatabaseError(f"cannot switch {path} to WAL mode (got {mode})")
    # NORMAL in WAL mode: a commit survives a crash of this process (kill -9) without an
    # fsync; incidents switch to FULL for their commit so they survive a power cut too.
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA journal_size_limit = 4194304")  # the WAL shrinks back after a burst
    conn.execute("PRAGMA cache_size = -1024")  # 1 MiB of page cache: the OS caches the rest
    conn.execute("PRAGMA temp_store = MEMORY")
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise sqlite3.DatabaseError(
            f"{path} has schema version {version}, newer than this agent's {SCHEMA_VERSION}"
        )
    for statement in _SCHEMA:
        conn.execute(statement)
    return conn


def _quarantine(path: Path, problem: str) -> None:
    stamp = time.strftime("%Y%m%dT%H%M%S")
    for suffix in ("", "-wal", "-shm"):
        old = Path(f"{path}{suffix}")
        if old.exists():
            os.replace(old, Path(f"{path}.damaged-{stamp}{suffix}"))
    log_event(log, "outbox_damaged", logging.ERROR, path=str(path), problem=problem,
              moved_to=f"{path}.damaged-{stamp}")


def _legacy_next_seq(state_dir: Path) -> int | None:
    """The old counter file's value (also once migrated: a deleted outbox.db must not make
    numbers start again from 0 where that file says they had gone further)."""
    found = None
    for name in (LEGACY_SEQ_FILE, f"{LEGACY_SEQ_FILE}.migrated"):
        try:
            text = (state_dir / name).read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError):
            continue
        if text.isdigit():
            found = max(found or 0, int(text))
    return found


class StateDirBusy(RuntimeError):
    """Another process has this state folder's outbox open."""


def lock_state_dir(state_dir: Path) -> int:
    """An open descriptor holding the folder's lock; close it to release."""
    fd = os.open(state_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except ImportError:  # not a POSIX system: no protection, as before
        pass
    except OSError:
        os.close(fd)
        raise StateDirBusy(
            f"{state_dir}: another gridsense-edge is using this state folder"
        ) from None
    return fd


def _damaged(exc: sqlite3.DatabaseError) -> bool:
    # Only a file that is not a database or is corrupt is moved aside; "locked", "cannot
    # open" and the like are the environment's problem and are raised as they are.
    return getattr(exc, "sqlite_errorname", "") in ("SQLITE_CORRUPT", "SQLITE_NOTADB")


def open_outbox_db(state_dir: Path) -> tuple[sqlite3.Connection, int]:
    """The open connection and the next sequence number to hand out.

    A file SQLite finds corrupt is moved aside (kept for a post-mortem) and a fresh one
    started; its sequence then continues at the current time in milliseconds, which is above
    anything a counter could have reached, so numbers never go backwards.
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / FILE_NAME
    floor = 0
    try:
        conn = _connect(path)
        row = conn.execute("SELECT value FROM meta WHERE key = 'next_seq'").fetchone()
    except sqlite3.DatabaseError as exc:
        if not _damaged(exc):
            raise
        _quarantine(path, repr(exc))
        floor = int(time.time() * 1000)
        conn = _connect(path)
        row = None
    if row is not None:
        return conn, int(row[0])
    # A new file. Continue above an earlier version's counter file if there is one (it held
    # the end of its reserved block, which is above every number it issued).
    legacy = _legacy_next_seq(state_dir)
    next_seq = max(floor, legacy or 0)
    conn.execute("INSERT INTO meta (key, value) VALUES ('next_seq', ?)", (next_seq,))
    if (state_dir / LEGACY_SEQ_FILE).exists():
        os.replace(state_dir / LEGACY_SEQ_FILE, state_dir / f"{LEGACY_SEQ_FILE}.migrated")
        log_event(log, "sequence_migrated", next_seq=next_seq,
                  source=str(state_dir / LEGACY_SEQ_FILE))
    return conn, next_seq


def files_size(state_dir: Path) -> int:
    """Bytes the outbox occupies on disk (database, write-ahead log, shared-memory index)."""
    total = 0
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(OSError):  # no WAL right after a checkpoint: fine
            total += os.stat(state_dir / f"{FILE_NAME}{suffix}").st_size
    return total
