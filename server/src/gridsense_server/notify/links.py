"""Signed links in messages: ``<public url>/link/<incident>?u=<user>&e=<expiry>&s=<sig>``.

The signature (HMAC-SHA256 with the server's token secret) proves the server issued the link
for that incident and person; opening it leads to the incident on the web page (after signing
in: a link is not a login).
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from urllib.parse import urlencode


class LinkSigner:
    def __init__(self, secret: bytes, public_url: str, ttl_s: int) -> None:
        self._key = hashlib.sha256(b"gridsense-link:" + secret).digest()
        self.public_url = public_url.rstrip("/")
        self.ttl_s = ttl_s

    def _sign(self, incident_id: str, user: str, expires: int) -> str:
        message = f"{incident_id}\n{user}\n{expires}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()[:32]

    def link(self, incident_id: str, user: str, now: datetime) -> str:
        expires = int(now.timestamp()) + self.ttl_s
        query = urlencode({"u": user, "e": expires, "s": self._sign(incident_id, user, expires)})
        return f"{self.public_url}/link/{incident_id}?{query}"

    def verify(self, incident_id: str, user: str, expires: int, signature: str,
               now: datetime) -> bool:
        if expires < now.timestamp():
            return False
        return hmac.compare_digest(self._sign(incident_id, user, expires), signature)
