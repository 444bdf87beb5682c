"""The gateway's local copy of the residents' credentials (SQLite, capped, no card in clear)."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gridsense_protocol.access_hash import keyed_hash

from .passbook import SCHEMA_V2, PassBook, PassUpdate, wire_fields
from .staging import Staging, Transfer

SCHEMA_VERSION = 2  # 1: credentials; 2: + pass keys, pass records, revoked passes, use counts
FILE_NAME = "access.db"
DEFAULT_MAX_CREDENTIALS = 100_000
WIRE_FIELDS = ("id", "card", "pin", "valid_from", "valid_until", "doors", "buildings")


class CredentialError(ValueError):
    """A sync message that cannot be applied; names what is wrong."""


class StoreFull(CredentialError):
    pass



def card_hash(key: bytes, card_number: str) -> str:
    """What is stored and logged in place of a card number."""
    return keyed_hash(key, "card", card_number)


def pin_hash(key: bytes, pin: str) -> str:
    return keyed_hash(key, "pin", pin)


@dataclass(frozen=True, slots=True)
class Credential:
    id: str
    card: str | None  # keyed hash
    pin: str | None  # keyed hash
    valid_from: float | None  # epoch seconds
    valid_until: float | None
    doors: tuple[str, ...]  # door ids, or "*"
    buildings: tuple[str, ...]
    revoked: bool = False

    def allows(self, door: str, building: str | None) -> bool:
        return "*" in self.doors or door in self.doors or (
            building is not None and building in self.buildings
        )

    @classmethod
    def from_wire(cls, item: Mapping[str, Any] | Sequence[Any]) -> Credential:
        """One credential as the server sends it (hashes, never numbers): the compact list
        ``[id, card, pin, valid_from, valid_until, doors, buildings]`` or the same as a dict."""
        item = wire_fields(item, WIRE_FIELDS, "credential", CredentialError)
        try:
            ident = str(item["id"])
            card, pin = item.get("card"), item.get("pin")
            if card is None and pin is None:
                raise CredentialError(f"credential {ident!r} has neither card nor pin")
            return cls(
                id=ident, card=None if card is None else str(card),
                pin=None if pin is None else str(pin),
                valid_from=_epoch(item.get("valid_from")),
                valid_until=_epoch(item.get("valid_until")),
                doors=tuple(str(d) for d in item.get("doors", ())),
                buildings=tuple(str(b) for b in item.get("buildings", ())),
                revoked=bool(item.get("revoked", False)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, CredentialError):
                raise
            raise CredentialError(f"credential {item!r:.80}: {exc!r}") from None


def _now(now: float | None) -> float:
    return time.time() if now is None else now


def _epoch(value: Any) -> float | None:
    return None if value is None else float(value)


class CredentialStore:
    def __init__(self, state_dir: Path, max_credentials: int = DEFAULT_MAX_CREDENTIALS) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        self.path = state_dir / FILE_NAME
        self.max_credentials = max_credentials
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        os.chmod(self.path, 0o600)  # hashes and the site key: the agent's user only
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        if self._db.execute("PRAGMA user_version").fetchone()[0] == 0:
            self._db.executescript(  # schema 1, upgraded below like any older copy
                """
                CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);
                CREATE TABLE IF NOT EXISTS credentials(
                    id TEXT PRIMARY KEY, card TEXT, pin TEXT, valid_from REAL,
                    valid_until REAL, doors TEXT, buildings TEXT, revoked INTEGER);
                CREATE INDEX IF NOT EXISTS credentials_card ON credentials(card);
                CREATE INDEX IF NOT EXISTS credentials_pin ON credentials(pin);
                PRAGMA user_version = 1;
                """
            )
        self._upgrade()
        self.staging = Staging(self)  # chunked transfers, staged until every part is in
        self.passes = PassBook(self._db, max_credentials)
        self._key: bytes | None = None
        key = self._meta("hash_key")
        if key:
            self._key = bytes.fromhex(key)

    def _upgrade(self) -> None:
        """1 -> 2 in one transaction: the credentials stay, the pass tables start empty (the
        next sync fills them)."""
        if self._db.execute("PRAGMA user_version").fetchone()[0] < 2:
            with self._txn():
                for statement in SCHEMA_V2.split(";"):
                    if statement.strip():
                        self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    @property
    def schema_version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def close(self) -> None:
        self._db.close()

    @property
    def connection(self) -> sqlite3.Connection:
        return self._db

    def transaction(self) -> _Transaction:
        return _Transaction(self._db)

    # ---- reading ----

    @property
    def version(self) -> int:
        value = self._meta("version")
        return int(value) if value else 0

    @property
    def hash_key(self) -> bytes | None:
        return self._key

    def count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM credentials").fetchone()[0])

    def hash_card(self, number: str) -> str | None:
        return None if self._key is None else card_hash(self._key, number)

    def hash_pin(self, pin: str) -> str | None:
        return None if self._key is None else pin_hash(self._key, pin)

    def by_card(self, hashed: str) -> Credential | None:
        return self._one("card", hashed)

    def by_pin(self, hashed: str) -> Credential | None:
        return self._one("pin", hashed)

    def by_id(self, ident: str) -> Credential | None:
        return self._one("id", ident)

    def _one(self, column: str, value: str) -> Credential | None:
        row = self._db.execute(
            f"SELECT id, card, pin, valid_from, valid_until, doors, buildings, revoked "
            f"FROM credentials WHERE {column} = ? ORDER BY revoked LIMIT 1", (value,)
        ).fetchone()
        if row is None:
            return None
        return Credential(row[0], row[1], row[2], row[3], row[4], tuple(json.loads(row[5])),
                          tuple(json.loads(row[6])), bool(row[7]))

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    # ---- sync ----

    def apply_snapshot(
        self, version: int, hash_key: bytes, credentials: Iterable[Credential],
        passes: PassUpdate | None = None, now: float | None = None,
    ) -> int:
        """Replace the whole copy (first sync, or the gateway was too far behind); pass
        records and revocations too, pass keys when the snapshot carries them."""
        items = list(credentials)
        if len(items) > self.max_credentials:
            raise StoreFull(f"snapshot has {len(items)} credentials, cap {self.max_credentials}")
        with self._txn():
            self._db.execute("DELETE FROM credentials")
            self._upsert(items)
            self.passes.apply(passes or PassUpdate(), replace=True, now=_now(now))
            self._set_meta("hash_key", hash_key.hex())
            self._set_meta("version", str(version))
        self._key = hash_key
        self.passes.reload()
        return len(items)

    def apply_delta(
        self, base: int, version: int, upserts: Iterable[Credential], revoked: Iterable[str],
        passes: PassUpdate | None = None, now: float | None = None,
    ) -> bool:
        """Apply changes ``base`` -> ``version``; False (nothing applied) if the copy is older
        than ``base`` (the caller then asks for a snapshot). A delta already in is a no-op."""
        current = self.version
        if version <= current:
            return True
        # A delta carries the latest state of everything changed after ``base``, so it also
        # applies over any copy between ``base`` and ``version`` (two pushes in a row).
        if base > current:
            return False
        items = list(upserts)
        with self._txn():
            self._upsert(items)
            self._db.executemany(
                "UPDATE credentials SET revoked = 1 WHERE id = ?", [(i,) for i in revoked]
            )
            if self.count() > self.max_credentials:
                raise StoreFull(f"delta would exceed the cap of {self.max_credentials}")
            if passes is not None:
                self.passes.apply(passes, replace=False, now=_now(now))
            self._set_meta("version", str(version))
        self.passes.reload()
        return True

    def apply_staged(self, transfer: Transfer, now: float | None = None) -> bool:
        """Swap a complete staged transfer in, in one transaction. False (nothing applied,
        staging dropped) for a delta whose base is newer than the copy."""
        if transfer.mode == "delta":
            current = self.version
            if transfer.version <= current or transfer.base > current:
                self.staging.discard()
                return transfer.version <= current
        elif (staged := self.staging.staged_count()) > self.max_credentials:
            self.staging.discard()
            raise StoreFull(f"snapshot has {staged} credentials, cap {self.max_credentials}")
        with self._txn():
            self.staging.swap_in(transfer)
            if self.count() > self.max_credentials:
                raise StoreFull(f"transfer would exceed the cap of {self.max_credentials}")
            self.passes.prune(_now(now))
            self.passes.check_caps()
            if transfer.secret is not None:
                self._set_meta("hash_key", transfer.secret)
            self._set_meta("version", str(transfer.version))
        if transfer.secret is not None:
            self._key = bytes.fromhex(transfer.secret)
        self.passes.reload()
        return True

    def _upsert(self, items: list[Credential]) -> None:
        self._db.executemany(
            "INSERT OR REPLACE INTO credentials VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(c.id, c.card, c.pin, c.valid_from, c.valid_until, json.dumps(list(c.doors)),
              json.dumps(list(c.buildings)), int(c.revoked)) for c in items],
        )

    def _set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def _txn(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any error (a half-applied sync never stays)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *_: object) -> None:
        self._db.execute("ROLLBACK" if exc_type is not None else "COMMIT")


class _StoreHolder:
    """Shared by every OSDP port of the agent; closed with the agent's shared resources."""

    def __init__(self, state_dir: Path) -> None:
        self.store = CredentialStore(state_dir)

    async def close(self) -> None:
        self.store.close()


def credential_store(shared: Any, state_dir: Path) -> CredentialStore:
    """The agent's one credential copy (``shared``: the drivers' SharedResources)."""
    holder = shared.get_or_create("access.credentials", lambda: _StoreHolder(state_dir))
    return holder.store  # type: ignore[no-any-return]
