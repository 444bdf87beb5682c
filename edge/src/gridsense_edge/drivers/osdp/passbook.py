"""Electronic passes in the gateway's credential copy: the keys that verify them, the records
of compact passes, revoked pass ids, and this gateway's use counts (same SQLite file and
connection as the credentials, so a sync changes both in one transaction).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gridsense_protocol.passes import MAX_USES, PASS_ID_BYTES

# The upgrade from schema 1 (credentials only); staging.py stages the same shapes per part.
SCHEMA_V2 = """
CREATE TABLE IF NOT EXISTS pass_keys(
    kind TEXT NOT NULL, key_id INTEGER NOT NULL, key TEXT NOT NULL, PRIMARY KEY (kind, key_id));
CREATE TABLE IF NOT EXISTS passes(
    id TEXT PRIMARY KEY, kind TEXT, holder TEXT, not_before INTEGER, not_after INTEGER,
    uses INTEGER, doors TEXT, buildings TEXT);
CREATE INDEX IF NOT EXISTS passes_not_after ON passes(not_after);
CREATE TABLE IF NOT EXISTS revoked_passes(id TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS pass_uses(id TEXT PRIMARY KEY, used INTEGER, not_after INTEGER);
CREATE INDEX IF NOT EXISTS pass_uses_not_after ON pass_uses(not_after);
"""
PASS_FIELDS = ("pass_id", "kind", "holder", "not_before", "not_after", "uses", "doors",
               "buildings")
KEY_KINDS = ("public", "site")
DEFAULT_MAX_PASSES = 100_000  # records, revoked ids and use counts: each capped at this
PRUNE_EVERY_S = 60.0


class PassSyncError(ValueError):
    """A pass key, record or revocation in a sync that cannot be applied."""


@dataclass(frozen=True, slots=True)
class PassRecord:
    pass_id: str
    kind: str
    holder: str | None
    not_before: int
    not_after: int
    uses: int
    doors: tuple[str, ...]
    buildings: tuple[str, ...]

    def row(self) -> tuple[Any, ...]:
        return (self.pass_id, self.kind, self.holder, self.not_before, self.not_after,
                self.uses, json.dumps(list(self.doors)), json.dumps(list(self.buildings)))

    @classmethod
    def from_wire(cls, item: Mapping[str, Any] | Sequence[Any]) -> PassRecord:
        """``[pass_id, kind, holder, not_before, not_after, uses, doors, buildings]``, or the
        same as a dict."""
        item = wire_fields(item, PASS_FIELDS, "pass record", PassSyncError)
        try:
            pass_id = _pass_id(item["pass_id"])
            kind = str(item.get("kind") or "resident")
            if kind not in ("resident", "visitor"):
                raise PassSyncError(f"pass {pass_id}: kind {kind!r} (resident, visitor)")
            uses = int(item.get("uses") or 0)
            if not 0 <= uses <= MAX_USES:
                raise PassSyncError(f"pass {pass_id}: use limit {uses} out of 0..{MAX_USES}")
            holder = item.get("holder")
            return cls(pass_id, kind, None if holder in (None, "") else str(holder),
                       int(item["not_before"]), int(item["not_after"]), uses,
                       tuple(str(d) for d in item.get("doors") or ()),
                       tuple(str(b) for b in item.get("buildings") or ()))
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, PassSyncError):
                raise
            raise PassSyncError(f"pass record {item!r:.80}: {exc!r}") from None


@dataclass(frozen=True, slots=True)
class PassUpdate:
    """The pass part of one sync message (or of one part of a transfer)."""

    keys: dict[str, dict[int, str]] | None = None  # None: keep the gateway's keys
    records: list[PassRecord] = field(default_factory=list)
    revoked: list[str] = field(default_factory=list)

    @classmethod
    def from_args(cls, args: Mapping[str, Any]) -> PassUpdate:
        keys = args.get("pass_keys")
        return cls(None if keys is None else parse_keys(keys),
                   [PassRecord.from_wire(p) for p in args.get("passes") or []],
                   [_pass_id(i) for i in args.get("revoked_passes") or []])


def wire_fields(item: Mapping[str, Any] | Sequence[Any], fields: Sequence[str], what: str,
                error: type[ValueError]) -> Mapping[str, Any]:
    """A compact wire list (``fields`` in order) as a dict; a dict as it is."""
    if isinstance(item, Mapping):
        return item
    if isinstance(item, str | bytes) or len(item) != len(fields):
        raise error(f"{what} {item!r:.80}: expected {len(fields)} fields ({', '.join(fields)})")
    return dict(zip(fields, item, strict=True))


def parse_keys(value: Any) -> dict[str, dict[int, str]]:
    """``{"public": {"<id>": "<64 hex>"}, "site": {...}}`` checked, as {kind: {id: hex}}."""
    if not isinstance(value, Mapping):
        raise PassSyncError(f"pass_keys: expected an object, got {type(value).__name__}")
    out: dict[str, dict[int, str]] = {}
    for kind in KEY_KINDS:
        keys = value.get(kind) or {}
        if not isinstance(keys, Mapping):
            raise PassSyncError(f"pass_keys.{kind}: expected an object of key id -> hex")
        out[kind] = {}
        for key_id, hexed in keys.items():
            try:
                number, raw = int(key_id), bytes.fromhex(str(hexed))
            except ValueError:
                raise PassSyncError(f"pass_keys.{kind}.{key_id}: not a key id and hex") from None
            if not 0 <= number <= 255 or len(raw) != 32:
                raise PassSyncError(f"pass_keys.{kind}.{key_id}: key id 0..255 and 32 bytes "
                                    f"expected (got {len(raw)} bytes)")
            out[kind][number] = raw.hex()
    return out  # a kind this gateway does not know (a later server's) is left out, not fatal


def _pass_id(value: Any) -> str:
    text = str(value).lower()
    if len(text) != PASS_ID_BYTES * 2 or any(c not in "0123456789abcdef" for c in text):
        raise PassSyncError(f"pass id {value!r:.40}: expected {PASS_ID_BYTES * 2} hex digits")
    return text


class PassBook:
    """Reads and writes the pass tables on the credential store's connection. Writers run
    inside the store's transactions; ``consume`` opens its own."""

    def __init__(self, db: sqlite3.Connection, max_items: int = DEFAULT_MAX_PASSES) -> None:
        self._db = db
        self.max_items = max_items
        self.public_keys: dict[int, bytes] = {}
        self.site_keys: dict[int, bytes] = {}
        self._pruned_at = float("-inf")
        self.reload()

    def reload(self) -> None:
        """The keys in memory (verification must not read SQLite): after every sync."""
        public: dict[int, bytes] = {}
        site: dict[int, bytes] = {}
        for kind, key_id, key in self._db.execute("SELECT kind, key_id, key FROM pass_keys"):
            (public if kind == "public" else site)[int(key_id)] = bytes.fromhex(key)
        self.public_keys, self.site_keys = public, site

    # ---- reading ----

    def record(self, pass_id: str) -> PassRecord | None:
        row = self._db.execute(
            "SELECT id, kind, holder, not_before, not_after, uses, doors, buildings "
            "FROM passes WHERE id = ?", (pass_id,)).fetchone()
        if row is None:
            return None
        return PassRecord(row[0], row[1], row[2], row[3], row[4], row[5],
                          tuple(json.loads(row[6])), tuple(json.loads(row[7])))

    def is_revoked(self, pass_id: str) -> bool:
        return self._db.execute("SELECT 1 FROM revoked_passes WHERE id = ?",
                                (pass_id,)).fetchone() is not None

    def used(self, pass_id: str) -> int:
        row = self._db.execute("SELECT used FROM pass_uses WHERE id = ?", (pass_id,)).fetchone()
        return 0 if row is None else int(row[0])

    def counts(self) -> dict[str, int]:
        return {table: int(self._db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
                for table in ("passes", "revoked_passes", "pass_uses")}

    # ---- sync (inside the caller's transaction) ----

    def apply(self, update: PassUpdate, *, replace: bool, now: float) -> None:
        """A snapshot (``replace``) swaps records and revocations; a delta adds to them. Keys
        are replaced whenever the message carries them. Use counts are this gateway's own and
        survive every sync."""
        db = self._db
        if replace:
            db.execute("DELETE FROM passes")
            db.execute("DELETE FROM revoked_passes")
        if update.keys is not None:
            self.replace_keys(update.keys)
        db.executemany("INSERT OR REPLACE INTO passes VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                       [r.row() for r in update.records])
        db.executemany("INSERT OR IGNORE INTO revoked_passes VALUES (?)",
                       [(i,) for i in update.revoked])
        self.prune(now)
        self.check_caps()

    def replace_keys(self, keys: Mapping[str, Mapping[int, str]]) -> None:
        self._db.execute("DELETE FROM pass_keys")
        self._db.executemany("INSERT INTO pass_keys VALUES (?, ?, ?)",
                             [(kind, key_id, key) for kind, items in keys.items()
                              for key_id, key in items.items()])

    def check_caps(self) -> None:
        for table, count in self.counts().items():
            if table != "pass_uses" and count > self.max_items:
                raise PassSyncError(f"{table}: {count} rows, cap {self.max_items}")

    def prune(self, now: float) -> None:
        """Expired records go, and with them their revocations and use counts."""
        db = self._db
        db.execute("DELETE FROM revoked_passes WHERE id IN "
                   "(SELECT id FROM passes WHERE not_after < ?)", (now - 86400,))
        db.execute("DELETE FROM passes WHERE not_after < ?", (now - 86400,))
        db.execute("DELETE FROM pass_uses WHERE not_after < ?", (now - 86400,))
        self._pruned_at = now

    # ---- use counts ----

    def consume(self, pass_id: str, limit: int, not_after: int, now: float) -> bool:
        """One use of a limited pass, on disk before it returns True; False when used up (or
        when the capped table is full of unexpired counts: refusing beats forgetting)."""
        if limit <= 0:
            return True
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            used = self.used(pass_id)
            if used >= limit:
                db.execute("ROLLBACK")
                return False
            if used == 0:
                if now - self._pruned_at > PRUNE_EVERY_S:
                    db.execute("DELETE FROM pass_uses WHERE not_after < ?", (now - 86400,))
                    self._pruned_at = now
                full = db.execute("SELECT count(*) FROM pass_uses").fetchone()[0]
                if full >= self.max_items:
                    db.execute("ROLLBACK")
                    raise UsesFull(f"pass use counts are at their cap of {self.max_items}")
            db.execute("INSERT OR REPLACE INTO pass_uses VALUES (?, ?, ?)",
                       (pass_id, used + 1, not_after))
            db.execute("COMMIT")
            return True
        except sqlite3.Error:
            db.execute("ROLLBACK")
            raise


class UsesFull(RuntimeError):
    pass
