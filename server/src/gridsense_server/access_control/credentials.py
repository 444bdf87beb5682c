"""Residents' credentials per community: create, change, revoke, import from CSV, and the
versioned changes the gateways sync. Numbers and PINs are hashed on the way in, never logged.
"""

from __future__ import annotations

import csv
import io
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gridsense_protocol import utc_now
from gridsense_protocol.access_hash import keyed_hash
from gridsense_protocol.topics import ID_PATTERN

from ..db.access_models import AccessSite, Credential
from ..db.models import Community, Grid, Point
from ..registry.grids import gateways_of  # noqa: F401  (credential sync asks here)

MAX_IMPORT_ROWS = 100_000
CSV_COLUMNS = ("id", "holder", "card", "pin", "valid_from", "valid_until", "doors", "buildings")

IdStr = Annotated[str, Field(pattern=f"^{ID_PATTERN}$")]


class CredentialInput(BaseModel):
    """What a person enters (API body or one CSV row)."""

    model_config = ConfigDict(extra="forbid")

    id: IdStr
    holder: Annotated[str, Field(min_length=1, max_length=200)]
    card: Annotated[str, Field(pattern=r"^[0-9]{1,20}$")] | None = None
    pin: Annotated[str, Field(pattern=r"^[0-9]{4,12}$")] | None = None
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    doors: list[IdStr | Literal["*"]] = Field(default_factory=list)  # door ids, or "*"
    buildings: list[IdStr] = Field(default_factory=list)

    @field_validator("valid_from", "valid_until")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("needs a time zone (e.g. 2026-12-01T00:00:00+08:00)")
        return value

    def model_post_init(self, _context: Any) -> None:
        if self.card is None and self.pin is None:
            raise ValueError("a credential needs a card number, a PIN, or both")
        if not self.doors and not self.buildings:
            raise ValueError("a credential must name doors ('*' for all) or buildings")


class CredentialView(BaseModel):
    id: str
    community: str
    holder: str
    card_last4: str | None
    has_pin: bool
    valid_from: datetime | None
    valid_until: datetime | None
    doors: list[str]
    buildings: list[str]
    revoked: bool
    version: int
    updated_at: datetime

    @classmethod
    def of(cls, row: Credential) -> CredentialView:
        return cls(id=row.id, community=row.community_id, holder=row.holder,
                   card_last4=row.card_last4, has_pin=row.pin_hash is not None,
                   valid_from=row.valid_from, valid_until=row.valid_until, doors=row.doors,
                   buildings=row.buildings, revoked=row.revoked, version=row.version,
                   updated_at=row.updated_at)


class CredentialProblem(ValueError):
    """Refused input; ``problems`` are ``line N: field: reason`` strings."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems[:5]) + (f" (+{len(problems) - 5} more)"
                                                    if len(problems) > 5 else ""))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class Changes:
    """What a gateway at ``base`` needs to reach ``version``."""

    community: str
    base: int
    version: int
    snapshot: bool  # True: replace everything (base unknown, too old, or too many changes)
    secret: str | None  # hex, with snapshots only
    upserts: list[list[Any]]
    revoked: list[str]
    # Electronic passes (passes/records.py adds them): keys, records, revocations.
    pass_keys: dict[str, Any] | None = None
    passes: list[list[Any]] = field(default_factory=list)
    revoked_passes: list[str] = field(default_factory=list)


def _epoch(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def wire(row: Credential) -> list[Any]:
    """Compact form for the gateway (a snapshot of thousands must fit one MQTT message):
    [id, card hash, pin hash, valid_from, valid_until, doors, buildings]."""
    return [row.id, row.card_hash, row.pin_hash, _epoch(row.valid_from),
            _epoch(row.valid_until), row.doors, row.buildings]


def site(session: Session, community: str) -> AccessSite:
    found = session.get(AccessSite, community)
    if found is None:
        if session.get(Community, community) is None:
            raise LookupError(f"no community {community!r} in the registry")
        found = AccessSite(community_id=community, secret=secrets.token_hex(32), version=0)
        session.add(found)
        session.flush()
    return found


def _bump(session: Session, community: str) -> tuple[AccessSite, int]:
    row = site(session, community)
    row.version += 1
    return row, row.version


def upsert(session: Session, community: str, items: list[CredentialInput]) -> int:
    """Create or change credentials (one version for the whole batch); returns the version."""
    if not items:
        return site(session, community).version
    row, version = _bump(session, community)
    key = bytes.fromhex(row.secret)
    now = utc_now()
    for item in items:
        existing = session.get(Credential, item.id)
        if existing is not None and existing.community_id != community:
            raise CredentialProblem([f"{item.id}: belongs to community {existing.community_id}"])
        cred = existing or Credential(id=item.id, community_id=community)
        cred.holder = item.holder
        cred.card_hash = keyed_hash(key, "card", item.card) if item.card else None
        cred.card_last4 = item.card[-4:] if item.card else None
        cred.pin_hash = keyed_hash(key, "pin", item.pin) if item.pin else None
        cred.valid_from, cred.valid_until = item.valid_from, item.valid_until
        cred.doors, cred.buildings = list(item.doors), list(item.buildings)
        cred.revoked = False
        cred.version, cred.updated_at = version, now
        if existing is None:
            session.add(cred)
    return version


def revoke(session: Session, credential_id: str) -> tuple[str, int]:
    """Returns (community, new version); LookupError for an unknown id."""
    cred = session.get(Credential, credential_id)
    if cred is None:
        raise LookupError(f"no credential {credential_id!r}")
    if cred.revoked:
        return cred.community_id, site(session, cred.community_id).version
    _, version = _bump(session, cred.community_id)
    cred.revoked, cred.version, cred.updated_at = True, version, utc_now()
    return cred.community_id, version


def parse_csv(text: str) -> list[CredentialInput]:
    """Header ``id,holder,card,pin,valid_from,valid_until,doors,buildings`` (doors/buildings
    separated by ``;``). All or nothing: any bad row refuses the file, naming line and field."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    missing = {"id", "holder"} - set(reader.fieldnames or ())
    unknown = set(reader.fieldnames or ()) - set(CSV_COLUMNS)
    if missing or unknown:
        raise CredentialProblem([f"line 1: header: missing {sorted(missing)} "
                                 f"unknown {sorted(unknown)} (expected {', '.join(CSV_COLUMNS)})"])
    items: list[CredentialInput] = []
    problems: list[str] = []
    seen: set[str] = set()
    for row in reader:
        line = reader.line_num
        if len(items) + len(problems) >= MAX_IMPORT_ROWS:
            problems.append(f"line {line}: more than {MAX_IMPORT_ROWS} rows")
            break
        data: dict[str, Any] = {k: (v or "").strip() for k, v in row.items() if k}
        for key in ("card", "pin", "valid_from", "valid_until"):
            if not data.get(key):
                data.pop(key, None)
        for key in ("doors", "buildings"):
            data[key] = [p.strip() for p in data.get(key, "").split(";") if p.strip()]
        try:
            item = CredentialInput.model_validate(data)
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            field = ".".join(str(p) for p in first["loc"]) or "row"
            # Never echo a card number or PIN back: name the field only.
            problems.append(f"line {line}: {field}: {first['msg']}")
            continue
        if item.id in seen:
            problems.append(f"line {line}: id: {item.id!r} appears twice")
            continue
        seen.add(item.id)
        items.append(item)
    if problems:
        raise CredentialProblem(problems)
    return items


def list_credentials(session: Session, community: str, include_revoked: bool = False,
                     limit: int = 1000) -> list[Credential]:
    stmt = select(Credential).where(Credential.community_id == community)
    if not include_revoked:
        stmt = stmt.where(Credential.revoked.is_(False))
    return list(session.scalars(stmt.order_by(Credential.id).limit(limit)))


def changes_since(session: Session, community: str, base: int,
                  max_delta: int = 5000) -> Changes:
    row = site(session, community)
    version = row.version
    if 0 < base <= version:
        changed = session.scalar(select(func.count()).select_from(Credential).where(
            Credential.community_id == community, Credential.version > base))
        if (changed or 0) <= max_delta:
            rows = list(session.scalars(select(Credential).where(
                Credential.community_id == community, Credential.version > base)))
            return Changes(community, base, version, False, None,
                           [wire(r) for r in rows if not r.revoked],
                           [r.id for r in rows if r.revoked])
    rows = list(session.scalars(select(Credential).where(
        Credential.community_id == community, Credential.revoked.is_(False))))
    return Changes(community, 0, version, True, row.secret, [wire(r) for r in rows], [])


def community_of_gateway(session: Session, gateway: str) -> str | None:
    return session.scalar(
        select(Grid.community_id).join(Point, Point.grid_id == Grid.id)
        .where(Point.gateway == gateway).limit(1))


def as_utc(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)
