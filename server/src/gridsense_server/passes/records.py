"""Pass records: a resident's own pass, visitors' passes, revocation, what the gateways sync,
and the QR texts (a day of one-minute tokens for a resident, the whole window for a visitor).

Every change moves the community's credential version (the one credentials use), so the
existing credential sync delivers pass records and revocations with the same snapshots,
deltas, parts and confirmations.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gridsense_protocol import passes, utc_now
from gridsense_protocol.passes import Pass

from ..access_control.credentials import Changes
from ..db.access_models import Credential
from ..db.pass_models import AccessPass
from . import keys

RESIDENT_DAYS = 365  # a resident's pass record; renewed when less than RENEW_DAYS are left
RENEW_DAYS = 7
TOKEN_S = 60  # a resident's QR changes every minute
TOKENS_PER_DAY = 24 * 3600 // TOKEN_S
MAX_VISITOR_DAYS = 31
MAX_VISITOR_USES = 100
MAX_LIVE_INVITES = 200  # visitor passes not yet expired, per inviting resident
LINK_BYTES = 24


class PassRefused(ValueError):
    """A request the rules refuse; ``zh`` first, then English, for the person who asked."""

    def __init__(self, zh: str, en: str, status: int = 422) -> None:
        super().__init__(f"{zh} / {en}")
        self.status = status


def link_hash(token: str) -> str:
    return hashlib.sha256(b"visitor-link\n" + token.encode()).hexdigest()


def _epoch(value: datetime) -> int:
    return int(value.timestamp())


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def credential(session: Session, credential_id: str) -> Credential:
    cred = session.get(Credential, credential_id)
    if cred is None:
        raise PassRefused(f"没有凭证 {credential_id}", f"no credential {credential_id!r}", 404)
    if cred.revoked:
        raise PassRefused("该住户凭证已注销", f"credential {credential_id} is revoked", 403)
    return cred


def resident_pass(session: Session, cred: Credential, now: datetime | None = None
                  ) -> tuple[AccessPass, bool]:
    """The resident's own pass record, made or renewed when needed (in the caller's
    transaction); True when it was made now."""
    now = now or utc_now()
    found = session.scalars(select(AccessPass).where(
        AccessPass.holder == cred.id, AccessPass.kind == "resident",
        AccessPass.revoked.is_(False), AccessPass.not_after > now + timedelta(days=RENEW_DAYS))
        .order_by(AccessPass.not_after.desc()).limit(1)).first()
    if found is not None:
        return found, False
    return _add(session, cred.community_id, kind="resident", holder=cred.id, not_before=now,
                not_after=now + timedelta(days=RESIDENT_DAYS), uses=0, doors=[], buildings=[],
                created_by=f"resident:{cred.id}", now=now), True


@dataclass(frozen=True, slots=True)
class VisitorRequest:
    name: str
    phone: str
    not_before: datetime
    not_after: datetime
    uses: int  # 1: single use
    buildings: list[str]
    doors: list[str]


def add_visitor(session: Session, inviter: Credential, request: VisitorRequest,
                created_by: str, *, own_building_only: bool) -> tuple[AccessPass, str]:
    """A visitor pass on ``inviter``'s behalf; returns it and the link token (shown once)."""
    now = utc_now()
    start, end = _aware(request.not_before), _aware(request.not_after)
    if end <= start or end <= now:
        raise PassRefused("结束时间须晚于开始时间和现在", "the window must end after it starts "
                          "and after now")
    if end - start > timedelta(days=MAX_VISITOR_DAYS):
        raise PassRefused(f"访客通行证最长 {MAX_VISITOR_DAYS} 天",
                          f"a visitor pass lasts at most {MAX_VISITOR_DAYS} days")
    if not 1 <= request.uses <= MAX_VISITOR_USES:
        raise PassRefused(f"次数须在 1 到 {MAX_VISITOR_USES} 之间",
                          f"uses must be 1..{MAX_VISITOR_USES}")
    buildings, doors = list(request.buildings), list(request.doors)
    if own_building_only:
        if doors or not buildings or any(b not in inviter.buildings for b in buildings):
            mine = "、".join(inviter.buildings) or "无"
            raise PassRefused(f"只能邀请访客进入您所在的楼栋（{mine}）",
                              f"you may invite visitors to your own building only "
                              f"({', '.join(inviter.buildings) or 'none'})", 403)
    elif not doors and not buildings:
        buildings = list(inviter.buildings)
        doors = [d for d in inviter.doors if d != "*"] if not buildings else []
        if not buildings and not doors:
            raise PassRefused("请指定楼栋或门", "name the buildings or doors the visitor may "
                              "enter")
    live = session.scalars(select(AccessPass.pass_id).where(
        AccessPass.holder == inviter.id, AccessPass.kind == "visitor",
        AccessPass.revoked.is_(False), AccessPass.not_after > now)).all()
    if len(live) >= MAX_LIVE_INVITES:
        raise PassRefused(f"有效邀请已达上限（{MAX_LIVE_INVITES}）",
                          f"at most {MAX_LIVE_INVITES} live invitations", 429)
    token = secrets.token_urlsafe(LINK_BYTES)
    row = _add(session, inviter.community_id, kind="visitor", holder=inviter.id,
               not_before=start, not_after=end, uses=request.uses, doors=doors,
               buildings=buildings, created_by=created_by, now=now)
    row.visitor_name, row.visitor_phone = request.name, request.phone
    row.link_hash = link_hash(token)
    return row, token


def _add(session: Session, community: str, *, kind: str, holder: str, not_before: datetime,
         not_after: datetime, uses: int, doors: list[str], buildings: list[str],
         created_by: str, now: datetime) -> AccessPass:
    keys.pass_site(session, community)  # its site key rides with the records from now on
    version = keys.bump(session, community)
    row = AccessPass(pass_id=passes.new_pass_id(), community_id=community, kind=kind,
                     holder=holder, not_before=not_before.replace(microsecond=0),
                     not_after=not_after.replace(microsecond=0), uses=uses, doors=doors,
                     buildings=buildings, visitor_name=None, visitor_phone=None,
                     link_hash=None, created_by=created_by, created_at=now, revoked=False,
                     revoked_by=None, overuse_incident=None, version=version, updated_at=now)
    session.add(row)
    session.flush()
    return row


def revoke(session: Session, row: AccessPass, by: str) -> bool:
    """True when it was live; its community's version moves so gateways refuse it."""
    if row.revoked:
        return False
    row.revoked, row.revoked_by = True, by
    row.version, row.updated_at = keys.bump(session, row.community_id), utc_now()
    return True


def by_link(session: Session, token: str) -> AccessPass | None:
    if not token or len(token) > 100:
        return None
    return session.scalars(select(AccessPass).where(
        AccessPass.link_hash == link_hash(token))).first()


# ---- what the gateways sync ----

def wire(row: AccessPass) -> list[Any]:
    """[pass_id, kind, holder, not_before, not_after, uses, doors, buildings]"""
    return [row.pass_id, row.kind, row.holder, _epoch(row.not_before), _epoch(row.not_after),
            row.uses, row.doors, row.buildings]


def with_passes(session: Session, changes: Changes) -> Changes:
    """``changes`` with the community's pass keys, pass records and revocations added."""
    now = utc_now()
    stmt = select(AccessPass).where(AccessPass.community_id == changes.community,
                                    AccessPass.not_after > now)
    if not changes.snapshot:
        stmt = stmt.where(AccessPass.version > changes.base)
    rows = list(session.scalars(stmt.order_by(AccessPass.version, AccessPass.pass_id)))
    return replace(changes, pass_keys=keys.sync_keys(session, changes.community),
                   passes=[wire(r) for r in rows if not r.revoked],
                   revoked_passes=[r.pass_id for r in rows if r.revoked])


# ---- the QR texts ----

def _pass(row: AccessPass, key_id: int, not_before: int, not_after: int) -> Pass:
    return Pass(pass_id=row.pass_id, not_before=not_before, not_after=not_after,
                key_id=key_id, kind=row.kind, holder=row.holder,  # type: ignore[arg-type]
                uses=row.uses, doors=tuple(row.doors), buildings=tuple(row.buildings))


def qr_texts(session: Session, row: AccessPass, key_dir: Any, windows: list[tuple[int, int]]
             ) -> tuple[str, list[str]]:
    """(form, QR texts) of ``row`` for each window: compact when the community's gates read
    through OSDP, else signed with the deployment's key."""
    site = keys.pass_site(session, row.community_id)
    if site.compact:
        key_id, site_key = keys.site_key(session, row.community_id)
        return passes.COMPACT, [passes.mac(_pass(row, key_id, a, b), site_key)
                                for a, b in windows]
    key_id, private = keys.signing_key(session, key_dir)
    return passes.SIGNED, [passes.sign(_pass(row, key_id, a, b), private) for a, b in windows]


def minute_windows(row: AccessPass, start: datetime, count: int = TOKENS_PER_DAY
                   ) -> list[tuple[int, int]]:
    """One-minute windows from the minute of ``start``, inside the pass's own window."""
    first = _epoch(start) // TOKEN_S * TOKEN_S
    low, high = _epoch(row.not_before), _epoch(row.not_after)
    out = []
    for i in range(count):
        a = first + i * TOKEN_S
        b = a + TOKEN_S
        if b <= low or a >= high:
            continue
        out.append((max(a, low), min(b, high)))
    return out


def visitor_window(row: AccessPass) -> list[tuple[int, int]]:
    return [(_epoch(row.not_before), _epoch(row.not_after))]
