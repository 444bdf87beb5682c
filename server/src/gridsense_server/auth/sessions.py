"""Browser sessions, kept server-side so every server process sees a logout at once.

The browser holds a random id (256 bits) in an httpOnly cookie; the table holds only its
SHA-256, so a copy of the database signs nobody in. A session ends at the first of: logout,
revocation (logout everywhere, by the user or an admin), ``idle_s`` without a request the user
made, or ``absolute_s`` after sign-in. Each user keeps at most ``max_per_user`` (the oldest
are revoked), and ended rows are pruned, so the table stays bounded.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from gridsense_protocol import utc_now

from ..config import SessionsConfig
from ..db.web_models import WebSession

# last_seen_at is written at most this often per session (every request would be a write).
TOUCH_SHARE = 0.05
MAX_TOUCH_S = 60.0
KEEP_ENDED = timedelta(days=1)  # ended rows kept a day (who was signed in, for an inquiry)


def hash_id(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class SessionInfo:
    id_hash: str
    username: str
    created_at: datetime
    idle_expires_at: datetime
    expires_at: datetime

    def csrf_token(self, secret: bytes) -> str:
        """The synchronizer token for this session: derived, so nothing more is stored."""
        return hmac.new(secret, b"csrf\n" + self.id_hash.encode(), hashlib.sha256).hexdigest()


class SessionStore:
    def __init__(self, factory: sessionmaker[Session], config: SessionsConfig) -> None:
        self._factory = factory
        self.config = config

    def _touch_after(self) -> timedelta:
        return timedelta(seconds=min(MAX_TOUCH_S, self.config.idle_s * TOUCH_SHARE))

    def _info(self, row: WebSession) -> SessionInfo:
        return SessionInfo(row.id_hash, row.username, row.created_at,
                           row.last_seen_at + timedelta(seconds=self.config.idle_s),
                           row.expires_at)

    def create(self, username: str, address: str, user_agent: str) -> tuple[str, SessionInfo]:
        """A new session: (the id for the cookie, its info). Blocking."""
        session_id = secrets.token_urlsafe(32)
        now = utc_now()
        row = WebSession(id_hash=hash_id(session_id), username=username, created_at=now,
                         last_seen_at=now,
                         expires_at=now + timedelta(seconds=self.config.absolute_s),
                         revoked_at=None, address=address[:64], user_agent=user_agent[:200])
        with self._factory.begin() as session:
            session.add(row)
            session.flush()
            live = list(session.scalars(
                select(WebSession.id_hash).where(WebSession.username == username,
                                                 WebSession.revoked_at.is_(None),
                                                 WebSession.expires_at > now)
                .order_by(WebSession.created_at.desc(), WebSession.id_hash)))
            if len(live) > self.config.max_per_user:
                session.execute(update(WebSession)
                                .where(WebSession.id_hash.in_(live[self.config.max_per_user:]))
                                .values(revoked_at=now))
            info = self._info(row)
        return session_id, info

    def check(self, session_id: str, *, touch: bool = True) -> SessionInfo | None:
        """The live session behind a cookie, or None. ``touch``: this request is the user's
        own doing and restarts the idle clock (a background poll or the stream does not)."""
        return self.check_hash(hash_id(session_id), touch=touch)

    def check_hash(self, id_hash: str, *, touch: bool = False) -> SessionInfo | None:
        now = utc_now()
        with self._factory() as session:
            row = session.get(WebSession, id_hash)
            if row is None or not self._live(row, now):
                return None
            if touch and now - row.last_seen_at >= self._touch_after():
                row.last_seen_at = now
                session.commit()
            return self._info(row)

    def _live(self, row: WebSession, now: datetime) -> bool:
        return (row.revoked_at is None and now < row.expires_at
                and now < row.last_seen_at + timedelta(seconds=self.config.idle_s))

    def revoke(self, id_hash: str) -> bool:
        with self._factory.begin() as session:
            result = session.execute(update(WebSession).where(
                WebSession.id_hash == id_hash, WebSession.revoked_at.is_(None))
                .values(revoked_at=utc_now()))
            return bool(result.rowcount)

    def revoke_all(self, username: str) -> int:
        """Every session of ``username`` (logout everywhere); returns how many were live."""
        now = utc_now()
        with self._factory.begin() as session:
            result = session.execute(update(WebSession).where(
                WebSession.username == username, WebSession.revoked_at.is_(None),
                WebSession.expires_at > now).values(revoked_at=now))
            return result.rowcount or 0

    def prune(self) -> int:
        """Delete rows ended more than a day ago (revoked, expired or idle)."""
        cutoff = utc_now() - KEEP_ENDED
        idle_cutoff = cutoff - timedelta(seconds=self.config.idle_s)
        with self._factory.begin() as session:
            result = session.execute(delete(WebSession).where(or_(
                WebSession.revoked_at < cutoff, WebSession.expires_at < cutoff,
                WebSession.last_seen_at < idle_cutoff)))
            return result.rowcount or 0
