"""A gateway as the API sends it: status, the figures of its last health message, its
configuration version, sequence counts and the registry's points on it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..db.access_models import AccessSite, GatewayCredentials
from ..db.enrollment_models import EnrolledGateway
from ..db.models import Gateway, Grid, Point
from ..db.sequences import SequenceSummary
from ..registry.names import PointPlace, point_places
from .digest import HealthDigest, digest


class ConfigVersion(BaseModel):
    """The configuration the server pushes (a community's access credentials): the version the
    gateway confirmed and the one it should have; ``current`` when they agree."""

    confirmed: int  # 0: never confirmed
    confirmed_at: datetime | None
    wanted: int
    current: bool


class GatewayView(HealthDigest):
    id: str
    name: str | None = None  # as enrolled (the control room's name for it), if enrolled here
    location: str | None = None
    state: str  # online | offline
    state_changed_at: datetime | None = None
    last_seen_at: datetime | None
    agent_version: str | None = None  # the agent's software, from its birth message
    health: dict[str, Any] | None  # the last Health message, as sent
    config: ConfigVersion | None = None  # None: no configuration is pushed to this gateway
    # Its remote configuration: desired against running and the last apply result
    # (remote_config's status, filled in by the route; None: never configured remotely).
    remote_config: dict[str, Any] | None = None
    seq_last: int | None  # highest sequence number received
    seq_gaps: int  # holes in the received sequence numbers (messages never received)
    seq_missing: int  # sequence numbers in those holes
    seq_redelivered: int  # messages received again after being recorded
    # The registry's points on this gateway, by id.
    points: list[PointPlace] = Field(default_factory=list)

    @classmethod
    def of(cls, gateway: Gateway, sequences: SequenceSummary | None,
           points: list[PointPlace] | None = None, *, enrolled: EnrolledGateway | None = None,
           config: ConfigVersion | None = None) -> GatewayView:
        return cls(
            **digest(gateway.last_health).model_dump(),
            points=points or [],
            id=gateway.id, state=gateway.state, last_seen_at=gateway.last_seen_at,
            name=enrolled.name if enrolled else None,
            location=enrolled.location if enrolled else None,
            state_changed_at=gateway.state_changed_at, agent_version=gateway.agent_version,
            health=gateway.last_health, config=config,
            seq_last=sequences.last if sequences else None,
            seq_gaps=sequences.gaps if sequences else 0,
            seq_missing=sequences.missing if sequences else 0,
            seq_redelivered=gateway.seq_redelivered or 0,
        )

    def live(self) -> dict[str, Any]:
        """What the stream pushes on a status or health change: the row's own facts, without
        the parts read from other tables (points, sequences, configuration, names)."""
        return self.model_dump(mode="json", exclude={
            "points", "health", "config", "name", "location", "seq_last", "seq_gaps",
            "seq_missing", "seq_redelivered"})


def points_by_gateway(session: Session, gateways: list[str]) -> dict[str, list[PointPlace]]:
    """Each gateway's registered points with their names: one query for all the gateways."""
    result: dict[str, list[PointPlace]] = {}
    for gateway, place in point_places(session, Point.gateway.in_(gateways)):
        result.setdefault(gateway, []).append(place)
    return result


def enrolled_gateways(session: Session, gateways: list[str]) -> dict[str, EnrolledGateway]:
    return {row.id: row for row in session.scalars(
        select(EnrolledGateway).where(EnrolledGateway.id.in_(gateways)))}


def config_versions(session: Session, gateways: list[str]) -> dict[str, ConfigVersion]:
    """Each gateway's access configuration: confirmed against its community's version. Only
    gateways serving a community that has a credential set (others get no configuration)."""
    community_of: dict[str, str] = {}
    for gateway, community in session.execute(
            select(Point.gateway, Grid.community_id).distinct()
            .join(Grid, Grid.id == Point.grid_id).where(Point.gateway.in_(gateways))
            .order_by(Point.gateway, Grid.community_id)):
        community_of.setdefault(gateway, community)  # a gateway serves one community
    wanted = {community: version for community, version in session.execute(
        select(AccessSite.community_id, AccessSite.version).where(
            AccessSite.community_id.in_(sorted(set(community_of.values())))))}
    confirmed = {row.gateway: row for row in session.scalars(
        select(GatewayCredentials).where(GatewayCredentials.gateway.in_(gateways)))}
    result = {}
    for gateway, community in community_of.items():
        if community not in wanted:
            continue
        row = confirmed.get(gateway)
        version = row.version if row is not None else 0
        result[gateway] = ConfigVersion(
            confirmed=version, confirmed_at=row.confirmed_at if row is not None else None,
            wanted=wanted[community], current=version >= wanted[community])
    return result
