"""Checking a password, for both sign-in routes (bearer token, browser session): throttled per
account and per address, every outcome audited.

Order matters: a blocked subject is answered 429 before the password is checked, so guesses
made while blocked teach the guesser nothing (not even a right password is confirmed).
"""

from __future__ import annotations

from fastapi import HTTPException, Request, status

from ..audit import record_now
from ..auth.addresses import throttle_subject
from ..db.models import ID_LEN
from ..db.models import Staff as StaffRow
from ..registry.passwords import verify_password
from .context import ApiContext
from .web_auth import WebAuth


def _too_many(retry_after_s: int, locked: bool) -> HTTPException:
    reason = ("locked after too many failed sign-ins" if locked
              else "too many failed sign-ins")
    return HTTPException(status.HTTP_429_TOO_MANY_REQUESTS,
                         f"{reason}; try again in {retry_after_s} s",
                         headers={"Retry-After": str(retry_after_s)})


def authenticate(context: ApiContext, web: WebAuth, request: Request, username: str,
                 password: str, via: str) -> str:
    """The username when the password is right; raises 429 (blocked) or 401. Blocking."""
    address = web.address(request)
    # Cut and made storable (PostgreSQL refuses NUL in text): an odd name is just unknown.
    name = username[:ID_LEN].replace("\x00", "?")
    subjects = [f"user:{name}", throttle_subject(address)]
    blocked = web.throttle.blocked(subjects)
    if blocked is not None:
        context.counters.inc("api.logins_throttled")
        # Through the sink: a flood of blocked attempts must not become a flood of writes.
        web.refusals.refuse(name, "login.blocked", name,
                            {"via": via, "subject": blocked.subject,
                             "retry_after_s": blocked.retry_after_s}, address)
        raise _too_many(blocked.retry_after_s, blocked.locked)
    with context.factory() as session:
        staff = session.get(StaffRow, name) if name == username else None
        password_hash = staff.password_hash if staff is not None else None
    # Verify even for an unknown user (against a dummy hash): same time either way.
    if not verify_password(password_hash, password):
        context.counters.inc("api.login_failures")
        now_blocked = web.throttle.failure(subjects)
        record_now(context.factory, name, "login.failure", name,
                   {"via": via, "blocked_for_s": now_blocked.retry_after_s if now_blocked else 0},
                   address)
        headers = {"WWW-Authenticate": "Bearer"}
        if now_blocked is not None:
            headers["Retry-After"] = str(now_blocked.retry_after_s)
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "wrong username or password",
                            headers=headers)
    web.throttle.success([f"user:{name}"])  # the address keeps its count: see docs/security.md
    context.counters.inc("api.logins")
    record_now(context.factory, name, "login.success", name, {"via": via}, address)
    return name
