"""The keys passes are made with.

The deployment's Ed25519 signing keys: the private half is a file ``<dir>/<key id>.key`` (hex,
0600, refused when others can read it, like the CA's key), the public half a database row every
server process and the credential sync read. The newest key not retired signs; rotation adds a
key (old passes still verify until their key is retired). Each community has site MAC keys for
compact passes (they go to its gateways anyway, so they live in the database like the
community's hashing secret). Any key change bumps the credential version of the communities it
concerns, so the existing sync delivers the new ``pass_keys``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gridsense_protocol import passes, utc_now

from ..access_control import credentials as creds
from ..db.access_models import AccessSite
from ..db.pass_models import PassSigningKey, PassSite
from ..secure_files import FileProblem, check_private, write_private

KEY_DIR = "pass-keys"
MAX_KEY_ID = 255


class KeyProblem(FileProblem):
    """No usable signing key; the message says which file and what to run."""


def key_file(directory: Path, key_id: int) -> Path:
    return directory / f"{key_id}.key"


def add_signing_key(session: Session, directory: Path) -> int:
    """A new signing key (it signs from now on); returns its id. Every community's version
    moves so their gateways learn the new public key."""
    ids = set(session.scalars(select(PassSigningKey.key_id)))
    newest = max(ids, default=-1)
    free = [i for i in range(newest + 1, MAX_KEY_ID + 1)] + [
        i for i in range(0, newest) if i not in ids]
    if not free:
        raise KeyProblem("all 256 pass key ids are taken: retire and delete old keys first")
    key_id = free[0]
    private, public = passes.new_signing_key()
    write_private(key_file(directory, key_id), private.hex().encode() + b"\n")
    session.add(PassSigningKey(key_id=key_id, public=public.hex(), created_at=utc_now(),
                               retired_at=None))
    session.flush()
    bump_all(session)
    return key_id


def retire_signing_key(session: Session, key_id: int) -> None:
    row = session.get(PassSigningKey, key_id)
    if row is None:
        raise LookupError(f"no pass signing key {key_id}")
    if row.retired_at is None:
        row.retired_at = utc_now()
        bump_all(session)


def active_signing_keys(session: Session) -> list[PassSigningKey]:
    return list(session.scalars(select(PassSigningKey).where(
        PassSigningKey.retired_at.is_(None)).order_by(PassSigningKey.created_at,
                                                       PassSigningKey.key_id)))


def signing_key(session: Session, directory: Path) -> tuple[int, bytes]:
    """(key id, private key) of the key that signs now; KeyProblem when there is none."""
    keys = active_signing_keys(session)
    if not keys:
        raise KeyProblem("no pass signing key: run gridsense-server passes rotate-key "
                         "--config <file>")
    key_id = keys[-1].key_id
    path = key_file(directory, key_id)
    if not path.is_file():
        raise KeyProblem(f"{path} is missing (pass signing key {key_id}); restore it from the "
                         "backup or run gridsense-server passes rotate-key")
    check_private(path)
    try:
        private = bytes.fromhex(path.read_text().strip())
    except ValueError:
        raise KeyProblem(f"{path}: not a hex Ed25519 key") from None
    if len(private) != 32:
        raise KeyProblem(f"{path}: {len(private)} bytes (an Ed25519 key has 32)")
    return key_id, private


def public_keys(session: Session) -> dict[int, bytes]:
    return {k.key_id: bytes.fromhex(k.public) for k in active_signing_keys(session)}


def pass_site(session: Session, community: str) -> PassSite:
    """The community's pass settings, made (with a first site key) on first use."""
    row = session.get(PassSite, community)
    if row is None:
        creds.site(session, community)  # LookupError for a community the registry lacks
        row = PassSite(community_id=community, compact=False,
                       site_keys={"0": passes.new_site_key().hex()}, current_site_key=0)
        session.add(row)
        session.flush()
    return row


def rotate_site_key(session: Session, community: str, keep_old: bool = False) -> int:
    """A new site MAC key for ``community``; the old ones are dropped (a stolen gateway's copy
    stops working) unless ``keep_old``. Returns the new key id."""
    row = pass_site(session, community)
    current = {int(k): v for k, v in row.site_keys.items()}
    key_id = (max(current) + 1) % (MAX_KEY_ID + 1)
    fresh = {key_id: passes.new_site_key().hex()}
    row.site_keys = {str(k): v for k, v in ((current | fresh) if keep_old else fresh).items()}
    row.current_site_key = key_id
    bump(session, community)
    return key_id


def site_key(session: Session, community: str) -> tuple[int, bytes]:
    row = pass_site(session, community)
    return row.current_site_key, bytes.fromhex(row.site_keys[str(row.current_site_key)])


def sync_keys(session: Session, community: str) -> dict[str, Any] | None:
    """The ``pass_keys`` argument for ``community``'s gateways (None: no pass keys yet)."""
    public = {str(k.key_id): k.public for k in active_signing_keys(session)}
    row = session.get(PassSite, community)
    site = dict(row.site_keys) if row is not None else {}
    if not public and not site:
        return None
    return {"public": public, "site": site}


def bump(session: Session, community: str) -> int:
    row = creds.site(session, community)
    row.version += 1
    return row.version


def bump_all(session: Session) -> int:
    """Move every community's version (a deployment-wide key changed); how many moved."""
    rows = list(session.scalars(select(AccessSite)))
    for row in rows:
        row.version += 1
    return len(rows)


def signing_key_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(PassSigningKey)) or 0


def all_signing_keys(session: Session) -> list[PassSigningKey]:
    return list(session.scalars(select(PassSigningKey).order_by(PassSigningKey.key_id)))
