"""Bearer tokens: ``base64url(username, expiry) . base64url(HMAC-SHA256)`` with the server secret.

Stateless, so checking one costs no database read; every server process sharing the secret
file accepts the others' tokens. Revocation is by expiry (``auth.token_ttl_s``) or by rotating
the secret.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
import time
from pathlib import Path

from pydantic import BaseModel


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenSigner:
    def __init__(self, secret: bytes, ttl_s: int) -> None:
        if len(secret) < 16:
            raise ValueError("the token secret must be at least 16 bytes")
        self._secret = secret
        self.ttl_s = ttl_s

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._secret, payload.encode(), hashlib.sha256).digest())

    def issue(self, username: str, now: float | None = None) -> str:
        expiry = int((now if now is not None else time.time()) + self.ttl_s)
        payload = _b64(f"{username}\n{expiry}".encode())
        return f"{payload}.{self._sign(payload)}"

    def verify(self, token: str, now: float | None = None) -> str | None:
        """The username, or None for a forged, malformed or expired token."""
        payload, _, signature = token.partition(".")
        if not payload or not signature:
            return None
        if not hmac.compare_digest(self._sign(payload), signature):
            return None
        try:
            username, expiry = _unb64(payload).decode().split("\n")
            expires_at = int(expiry)
        except (ValueError, binascii.Error, UnicodeDecodeError):
            return None
        if expires_at < (now if now is not None else time.time()):
            return None
        return username


def load_or_create_secret(path: Path) -> bytes:
    """Read the secret file, creating it (mode 0600) on first start."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32) + "\n")
        # link() fails if the file exists: when two processes start at once, one secret wins
        # and both read it, complete (never a half-written file).
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    secret = path.read_text(encoding="utf-8").strip().encode()
    if not secret:
        raise ValueError(f"{path}: the token secret file is empty")
    return secret


class TokenRequest(BaseModel):
    username: str
    password: str


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int
