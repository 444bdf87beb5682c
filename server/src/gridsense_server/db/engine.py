"""Engine and sessions for SQLite or PostgreSQL, chosen by the URL.

On SQLite the threads of this process take turns for the write lock in arrival order
(``WriterTurns``); docs/architecture.md says why.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import deque
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

SQLITE_TIMEOUT_S = 30.0


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the API read while ingest writes; NORMAL sync is durable across a process crash
    # (kill -9) with WAL, only an OS crash can lose the last commits.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


class WriterTurns:
    """First come, first served turns for the SQLite write lock among this process's
    connections. A connection takes its turn before its first write statement and gives it
    back when its transaction ends (commit, rollback, close)."""

    def __init__(self, timeout_s: float = SQLITE_TIMEOUT_S) -> None:
        self.timeout_s = timeout_s
        self._cond = threading.Condition()
        self._waiting: deque[object] = deque()
        self._owner: object | None = None

    def take(self, connection: object) -> None:
        with self._cond:
            if self._owner is connection:
                return
            self._waiting.append(connection)
            try:
                if not self._cond.wait_for(
                    lambda: self._owner is None and self._waiting[0] is connection,
                    self.timeout_s,
                ):
                    # What SQLite itself would say after its busy timeout: callers retry it.
                    raise sqlite3.OperationalError("database is locked (waiting for a turn)")
            finally:
                self._waiting.remove(connection)
                self._cond.notify_all()
            self._owner = connection

    def give_back(self, connection: object) -> None:
        with self._cond:
            if self._owner is connection:
                self._owner = None
                self._cond.notify_all()

    @property
    def owner(self) -> object | None:
        return self._owner


def _turn_taking_connection(turns: WriterTurns) -> type[sqlite3.Connection]:
    class TurnTakingConnection(sqlite3.Connection):
        # The turn is given back after the DBAPI call: the lock is free by then.
        def commit(self) -> None:
            try:
                super().commit()
            finally:
                turns.give_back(self)

        def rollback(self) -> None:
            try:
                super().rollback()
            finally:
                turns.give_back(self)

        def close(self) -> None:
            try:
                super().close()
            finally:
                turns.give_back(self)

    return TurnTakingConnection


def _is_read(statement: str) -> bool:
    return statement.lstrip()[:6].upper() == "SELECT"


def make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        on_disk = bool(database) and database != ":memory:" and not database.startswith("file:")
        if on_disk:
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        # timeout: wait for a writer in another process instead of failing "database is locked".
        connect_args: dict[str, Any] = {"timeout": SQLITE_TIMEOUT_S}
        turns = WriterTurns()
        if on_disk:  # in-memory databases are one per connection: nothing to share
            connect_args["factory"] = _turn_taking_connection(turns)
        engine = create_engine(url, connect_args=connect_args)
        event.listen(engine, "connect", _sqlite_pragmas)
        if on_disk:
            @event.listens_for(engine, "before_cursor_execute")
            def _take_turn(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
                if not _is_read(statement):
                    turns.take(conn.connection.dbapi_connection)

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def display_url(url: str) -> str:
    """The URL with any password masked, for logs."""
    return make_url(url).render_as_string(hide_password=True)
