"""Chunked credential transfers: numbered parts staged in the gateway's SQLite copy, swapped in
one transaction only when every part is in.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .passbook import PassUpdate

if TYPE_CHECKING:
    from .credentials import Credential, CredentialStore

SCHEMA = """
CREATE TABLE IF NOT EXISTS staged_transfer(
    one INTEGER PRIMARY KEY CHECK (one = 1), mode TEXT, base INTEGER, version INTEGER,
    parts INTEGER, secret TEXT);
CREATE TABLE IF NOT EXISTS staged_parts(part INTEGER PRIMARY KEY);
CREATE TABLE IF NOT EXISTS staged_credentials(
    id TEXT PRIMARY KEY, card TEXT, pin TEXT, valid_from REAL, valid_until REAL,
    doors TEXT, buildings TEXT, revoked INTEGER, part INTEGER);
CREATE TABLE IF NOT EXISTS staged_revoked(id TEXT PRIMARY KEY, part INTEGER);
CREATE TABLE IF NOT EXISTS staged_passes(
    id TEXT PRIMARY KEY, kind TEXT, holder TEXT, not_before INTEGER, not_after INTEGER,
    uses INTEGER, doors TEXT, buildings TEXT, part INTEGER);
CREATE TABLE IF NOT EXISTS staged_revoked_passes(id TEXT PRIMARY KEY, part INTEGER);
CREATE TABLE IF NOT EXISTS staged_pass_keys(part INTEGER PRIMARY KEY, keys TEXT);
"""
_TABLES = ("staged_transfer", "staged_parts", "staged_credentials", "staged_revoked",
           "staged_passes", "staged_revoked_passes", "staged_pass_keys")


@dataclass(frozen=True, slots=True)
class Transfer:
    mode: str  # "snapshot" | "delta"
    base: int  # 0 for a snapshot
    version: int
    parts: int
    secret: str | None  # hex, snapshots only

    @property
    def key(self) -> tuple[str, int, int, int]:
        return (self.mode, self.base, self.version, self.parts)


@dataclass(frozen=True, slots=True)
class Progress:
    transfer: Transfer
    have: int
    missing: list[int]

    def as_result(self) -> dict[str, object]:
        t = self.transfer
        return {"mode": t.mode, "base": t.base, "version": t.version, "parts": t.parts,
                "have": self.have, "missing": self.missing[:200]}


class Staging:
    """The staged transfer of one CredentialStore (same SQLite file, same connection)."""

    def __init__(self, store: CredentialStore) -> None:
        self._store = store
        store.connection.executescript(SCHEMA)

    def current(self) -> Transfer | None:
        row = self._store.connection.execute(
            "SELECT mode, base, version, parts, secret FROM staged_transfer").fetchone()
        return None if row is None else Transfer(row[0], row[1], row[2], row[3], row[4])

    def progress(self) -> Progress | None:
        transfer = self.current()
        if transfer is None:
            return None
        have = {p for (p,) in self._store.connection.execute("SELECT part FROM staged_parts")}
        missing = [p for p in range(transfer.parts) if p not in have]
        return Progress(transfer, len(have), missing)

    def add(self, transfer: Transfer, part: int, items: list[Credential],
            revoked: list[str], passes: PassUpdate | None = None) -> Progress | None:
        """Stage one part; None when it belongs to an older transfer than the one staged."""
        if not 0 <= part < transfer.parts:
            raise ValueError(f"part {part} outside 0..{transfer.parts - 1}")
        db = self._store.connection
        staged = self.current()
        with self._store.transaction():
            if staged is not None and staged.key != transfer.key:
                if transfer.version < staged.version:
                    return None
                self._clear()
                staged = None
            if staged is None:
                db.execute("INSERT INTO staged_transfer VALUES (1, ?, ?, ?, ?, ?)",
                           (transfer.mode, transfer.base, transfer.version, transfer.parts,
                            transfer.secret))
            # A resent part replaces what an earlier copy of it staged.
            db.execute("DELETE FROM staged_credentials WHERE part = ?", (part,))
            db.execute("DELETE FROM staged_revoked WHERE part = ?", (part,))
            db.executemany(
                "INSERT OR REPLACE INTO staged_credentials VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(c.id, c.card, c.pin, c.valid_from, c.valid_until, json.dumps(list(c.doors)),
                  json.dumps(list(c.buildings)), int(c.revoked), part) for c in items])
            db.executemany("INSERT OR REPLACE INTO staged_revoked VALUES (?, ?)",
                           [(i, part) for i in revoked])
            self._stage_passes(part, passes or PassUpdate())
            db.execute("INSERT OR IGNORE INTO staged_parts VALUES (?)", (part,))
        return self.progress()

    def _stage_passes(self, part: int, passes: PassUpdate) -> None:
        db = self._store.connection
        for table in ("staged_passes", "staged_revoked_passes", "staged_pass_keys"):
            db.execute(f"DELETE FROM {table} WHERE part = ?", (part,))
        db.executemany("INSERT OR REPLACE INTO staged_passes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       [(*r.row(), part) for r in passes.records])
        db.executemany("INSERT OR REPLACE INTO staged_revoked_passes VALUES (?, ?)",
                       [(i, part) for i in passes.revoked])
        if passes.keys is not None:
            db.execute("INSERT INTO staged_pass_keys VALUES (?, ?)",
                       (part, json.dumps(passes.keys)))

    def staged_count(self) -> int:
        return int(self._store.connection.execute(
            "SELECT count(*) FROM staged_credentials").fetchone()[0])

    def swap_in(self, transfer: Transfer) -> None:
        """Inside the caller's transaction: the staged parts become the live copy."""
        db = self._store.connection
        if transfer.mode == "snapshot":
            db.execute("DELETE FROM credentials")
        db.execute("INSERT OR REPLACE INTO credentials SELECT id, card, pin, valid_from, "
                   "valid_until, doors, buildings, revoked FROM staged_credentials")
        db.execute("UPDATE credentials SET revoked = 1 WHERE id IN (SELECT id FROM "
                   "staged_revoked)")
        if transfer.mode == "snapshot":
            db.execute("DELETE FROM passes")
            db.execute("DELETE FROM revoked_passes")
        db.execute("INSERT OR REPLACE INTO passes SELECT id, kind, holder, not_before, "
                   "not_after, uses, doors, buildings FROM staged_passes")
        db.execute("INSERT OR IGNORE INTO revoked_passes SELECT id FROM staged_revoked_passes")
        keys = db.execute("SELECT keys FROM staged_pass_keys ORDER BY part DESC").fetchone()
        if keys is not None:  # the last part that carried keys has the latest set
            self._store.passes.replace_keys(
                {kind: {int(i): k for i, k in items.items()}
                 for kind, items in json.loads(keys[0]).items()})
        self._clear()

    def discard(self) -> None:
        with self._store.transaction():
            self._clear()

    def _clear(self) -> None:
        db = self._store.connection
        for table in _TABLES:
            db.execute(f"DELETE FROM {table}")
