"""Residents on their phones: one-time sign-in codes and the sessions they open.

A code (10 characters without look-alikes, ~49 bits, shown as ``ABCDE-FGHJK``) is printed by
the control room or sent to the resident; it is stored as its SHA-256, works once, and expires.
Guesses are throttled per address by the caller. A resident session is its own kind: the
cookie's id is 256 random bits, stored hashed, bound to one credential, and can reach only that
resident's pass and invitations. A credential revoked ends what its sessions can do at once.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from gridsense_protocol import utc_now

from ..db.access_models import Credential
from ..db.pass_models import ResidentCode, ResidentSession

ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"  # no 0/O, 1/I/L
CODE_LENGTH = 10
CODE_TTL = timedelta(days=7)
SESSION_TTL = timedelta(days=90)
MAX_CODES_PER_RESIDENT = 5  # unused codes; older ones are voided
MAX_SESSIONS_PER_RESIDENT = 5  # phones; the oldest is signed out
COOKIE = "gs_resident"


def _hash(kind: str, value: str) -> str:
    return hashlib.sha256(f"{kind}\n{value}".encode()).hexdigest()


def normalise(code: str) -> str:
    return "".join(ch for ch in code.upper() if ch.isalnum())


def show(code: str) -> str:
    return f"{code[:5]}-{code[5:]}"


def issue_code(session: Session, credential_id: str, created_by: str,
               ttl: timedelta = CODE_TTL) -> tuple[str, datetime]:
    """A new one-time code for ``credential_id`` (as shown to a person) and when it expires."""
    cred = session.get(Credential, credential_id)
    if cred is None:
        raise LookupError(f"no credential {credential_id!r}")
    if cred.revoked:
        raise LookupError(f"credential {credential_id!r} is revoked")
    now = utc_now()
    code = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
    unused = list(session.scalars(select(ResidentCode).where(
        ResidentCode.credential_id == credential_id, ResidentCode.used_at.is_(None),
        ResidentCode.expires_at > now).order_by(ResidentCode.created_at.desc())))
    for old in unused[MAX_CODES_PER_RESIDENT - 1:]:
        old.expires_at = now
    session.add(ResidentCode(code_hash=_hash("code", code), credential_id=credential_id,
                             created_by=created_by, created_at=now, expires_at=now + ttl,
                             used_at=None))
    return show(code), now + ttl


def redeem(session: Session, code: str) -> str | None:
    """The credential id a valid unused code signs in (the code is then used up); None."""
    code = normalise(code)
    if len(code) != CODE_LENGTH:
        return None
    now = utc_now()
    row = session.get(ResidentCode, _hash("code", code), with_for_update=True)
    if row is None or row.used_at is not None or row.expires_at <= now:
        return None
    cred = session.get(Credential, row.credential_id)
    if cred is None or cred.revoked:
        return None
    row.used_at = now
    return row.credential_id


@dataclass(frozen=True, slots=True)
class Resident:
    credential_id: str
    session_hash: str
    csrf: str


def open_session(session: Session, credential_id: str) -> str:
    """A new session for the credential; returns the id for the cookie."""
    now = utc_now()
    session_id = secrets.token_urlsafe(32)
    session.add(ResidentSession(id_hash=_hash("session", session_id),
                                credential_id=credential_id, created_at=now,
                                expires_at=now + SESSION_TTL, revoked_at=None))
    session.flush()
    live = list(session.scalars(select(ResidentSession.id_hash).where(
        ResidentSession.credential_id == credential_id, ResidentSession.revoked_at.is_(None),
        ResidentSession.expires_at > now).order_by(ResidentSession.created_at.desc())))
    if len(live) > MAX_SESSIONS_PER_RESIDENT:
        session.execute(update(ResidentSession).where(
            ResidentSession.id_hash.in_(live[MAX_SESSIONS_PER_RESIDENT:])).values(revoked_at=now))
    return session_id


def csrf_token(session_id: str) -> str:
    return _hash("resident-csrf", session_id)


def check(session: Session, session_id: str) -> Resident | None:
    """The resident behind a cookie, while the session and the credential are live."""
    if not session_id or len(session_id) > 100:
        return None
    now = utc_now()
    row = session.get(ResidentSession, _hash("session", session_id))
    if row is None or row.revoked_at is not None or row.expires_at <= now:
        return None
    cred = session.get(Credential, row.credential_id)
    if cred is None or cred.revoked:
        return None
    return Resident(row.credential_id, row.id_hash, csrf_token(session_id))


def end(session: Session, session_id: str) -> None:
    session.execute(update(ResidentSession).where(
        ResidentSession.id_hash == _hash("session", session_id),
        ResidentSession.revoked_at.is_(None)).values(revoked_at=utc_now()))


def prune(session: Session, keep: timedelta = timedelta(days=1)) -> int:
    cutoff = utc_now() - keep
    removed = session.execute(delete(ResidentSession).where(or_(
        ResidentSession.revoked_at < cutoff, ResidentSession.expires_at < cutoff))).rowcount
    removed += session.execute(delete(ResidentCode).where(
        ResidentCode.expires_at < cutoff)).rowcount
    return int(removed or 0)
