"""In-memory point → (grid, gateway) map for the hot path: every reading needs its grid tag,
and every message about a point is checked against the gateway the registry assigns it to.

Rebuilt from the database at start-up, after a registry load, whenever the registry's version
moves (a load by another process: polled cheaply) and periodically. Lookups are plain dict
reads; a reload swaps one object holding both maps, so readers in any thread see either the
old registry or the new one, never half of each.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from ..db.models import Point
from ..db.registry_version import registry_version


@dataclass(frozen=True, slots=True)
class _Maps:
    grid_of: dict[str, str] = field(default_factory=dict)
    gateway_of: dict[str, str] = field(default_factory=dict)
    version: int = 0  # the registry version they were read at


class PointDirectory:
    def __init__(self, grids: dict[str, str] | None = None,
                 gateways: dict[str, str] | None = None) -> None:
        self._maps = _Maps(dict(grids or {}), dict(gateways or {}))

    def grid_of(self, point: str) -> str | None:
        return self._maps.grid_of.get(point)

    def gateway_of(self, point: str) -> str | None:
        return self._maps.gateway_of.get(point)

    def owners(self) -> dict[str, str]:
        """Point → its gateway, as of now: take it once per message or batch, then look up
        each point in it (one dict read)."""
        return self._maps.gateway_of

    @property
    def version(self) -> int:
        return self._maps.version

    def __len__(self) -> int:
        return len(self._maps.grid_of)

    def __contains__(self, point: str) -> bool:
        return point in self._maps.grid_of

    def reload(self, factory: sessionmaker[Session]) -> None:
        with factory() as session:
            version = registry_version(session)
            rows = session.execute(select(Point.id, Point.grid_id, Point.gateway)).all()
        self._maps = _Maps({point: grid for point, grid, _ in rows},
                           {point: gateway for point, _, gateway in rows}, version)

    @staticmethod
    def stored_version(factory: sessionmaker[Session]) -> int:
        """The registry's version in the database now (one single-row read)."""
        with factory() as session:
            return registry_version(session)
