"""The registry file: streets → communities → grids → micro-grids, points and staff.

Cross-references are checked while pydantic walks the document, so an error names
``file:line: key.path``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    model_validator,
)

from gridsense_protocol.topics import ID_PATTERN
from gridsense_protocol.yamlconfig import load_yaml_file, validate_yaml

# installer: provisions gateways in the communities (grids) it is given; sees their points.
Role = Literal["worker", "leader", "duty_officer", "command_centre", "control", "installer"]
ALL_SEEING_ROLES = frozenset({"control"})

# Ids become InfluxDB tags, URL parts and log fields: the protocol's id rules apply.
_Id = Annotated[str, Field(pattern=f"^{ID_PATTERN}$")]
_Name = Annotated[str, Field(min_length=1, max_length=200)]


def _seen(info: ValidationInfo, kind: str) -> set[str] | None:
    if info.context is None:
        return None
    return info.context.setdefault("seen", {}).setdefault(kind, set())


def _unique(kind: str) -> AfterValidator:
    def check(value: str, info: ValidationInfo) -> str:
        seen = _seen(info, kind)
        if seen is not None:
            if value in seen:
                raise ValueError(f"duplicate {kind} id {value!r}")
            seen.add(value)
        return value

    return AfterValidator(check)


def _defined(kind: str) -> AfterValidator:
    def check(value: str, info: ValidationInfo) -> str:
        seen = _seen(info, kind)
        if seen is not None and value not in seen:
            where = "staff:" if kind == "staff" else "streets:"
            raise ValueError(f"unknown {kind} {value!r} (not defined under {where})")
        return value

    return AfterValidator(check)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# Channel name -> apprise URL (wechat://..., dingtalk://secret@token, mailto://..., json://...).
Contacts = dict[Annotated[str, Field(pattern=r"^[a-z0-9_]{1,24}$")],
                Annotated[str, Field(pattern=r"^[a-z0-9+]{2,24}://", max_length=2000)]]
_Clock = Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]


class MicroGridSpec(_Strict):
    id: Annotated[_Id, _unique("grid")]
    name: _Name
    contacts: Contacts = {}  # the grid's group robots


class GridSpec(_Strict):
    id: Annotated[_Id, _unique("grid")]
    name: _Name
    micro_grids: list[MicroGridSpec] = []
    contacts: Contacts = {}


class CommunitySpec(_Strict):
    id: Annotated[_Id, _unique("community")]
    name: _Name
    grids: list[GridSpec] = []


class StreetSpec(_Strict):
    id: Annotated[_Id, _unique("street")]
    name: _Name
    communities: list[CommunitySpec] = []


class PointSpec(_Strict):
    id: Annotated[_Id, _unique("point")]
    gateway: _Id
    grid: Annotated[_Id, _defined("grid")]
    name: _Name
    location: Annotated[str, Field(max_length=200)] | None = None


class StaffSpec(_Strict):
    username: Annotated[_Id, _unique("staff")]
    name: _Name
    role: Role
    grids: list[Annotated[_Id, _defined("grid")]] = []
    # A community duty officer / street command centre owns every grid of these.
    communities: list[Annotated[_Id, _defined("community")]] = []
    streets: list[Annotated[_Id, _defined("street")]] = []
    contacts: Contacts = {}  # personal channels
    password: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    password_hash: Annotated[str, Field(pattern=r"^\$argon2(id|i|d)\$")] | None = None

    @model_validator(mode="after")
    def _one_secret(self) -> StaffSpec:
        if (self.password is None) == (self.password_hash is None):
            raise ValueError("give exactly one of password: or password_hash:")
        return self


class RosterSpec(_Strict):
    """Between ``starts`` and ``ends`` (local time, may wrap midnight) these staff replace the
    grid's day owners of ``role`` (e.g. night duty workers)."""

    id: Annotated[_Id, _unique("roster")]
    grid: Annotated[_Id, _defined("grid")]
    role: Role
    starts: _Clock
    ends: _Clock
    staff: Annotated[list[Annotated[_Id, _defined("staff")]], Field(min_length=1)]


class RegistryFile(_Strict):
    streets: list[StreetSpec] = []
    points: list[PointSpec] = []
    staff: list[StaffSpec] = []
    rosters: list[RosterSpec] = []

    def grids_of(self, person: StaffSpec) -> set[str]:
        """The grids a staff member owns: listed ones plus those of their communities/streets."""
        owned = set(person.grids)
        for street in self.streets:
            for community in street.communities:
                if street.id in person.streets or community.id in person.communities:
                    owned.update(grid.id for grid in community.grids)
        return owned

    def contacts_of_grids(self) -> dict[str, dict[str, str]]:
        result: dict[str, dict[str, str]] = {}
        for street in self.streets:
            for community in street.communities:
                for grid in community.grids:
                    result[grid.id] = grid.contacts
                    result.update((m.id, m.contacts) for m in grid.micro_grids)
        return result

    def grid_rows(self) -> list[tuple[str, str, str | None, str]]:
        """``(grid id, community id, parent id, name)``, parents before their micro-grids."""
        rows: list[tuple[str, str, str | None, str]] = []
        for street in self.streets:
            for community in street.communities:
                for grid in community.grids:
                    rows.append((grid.id, community.id, None, grid.name))
                    rows.extend((m.id, community.id, grid.id, m.name) for m in grid.micro_grids)
        return rows


def _context() -> dict[str, Any]:
    return {"seen": {}}


def load_registry_file(path: Path) -> RegistryFile:
    """Read and validate a registry file; raises ConfigError naming file:line: key."""
    return load_yaml_file(path, RegistryFile, context=_context())


def parse_registry(text: str, source: str = "<registry>") -> RegistryFile:
    return validate_yaml(text, source, RegistryFile, context=_context())
