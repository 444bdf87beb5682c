"""Relational state: the registry (who owns what), incidents (work orders) and gateways.

The same tables on SQLite and PostgreSQL; the schema itself is created by the Alembic
migrations in ``gridsense_server/migrations`` (these classes must stay in step with them;
tests/server/test_migrations.py compares the two).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

ID_LEN = 64  # gridsense_protocol.topics.ID_PATTERN allows 64 characters
ULID_LEN = 26

# Work-order states. An incident is "open" until closed or judged invalid; a repeat of the same
# (point, type) while open is appended to it instead of opening a second work order.
INCIDENT_STATES = ("new", "accepted", "resolved", "closed", "returned", "deferred", "invalid")
FINAL_STATES = ("closed", "invalid")
_OPEN_CONDITION = "state NOT IN ('closed', 'invalid')"


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both databases.

    SQLite has no timezone type and would hand back naive values; storing naive UTC there and
    re-attaching UTC on the way out keeps comparisons and API output identical on both.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: gridsense stores timezone-aware UTC times only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class Street(Base):
    __tablename__ = "streets"

    id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))


class Community(Base):
    __tablename__ = "communities"

    id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    street_id: Mapped[str] = mapped_column(ForeignKey("streets.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))


class Grid(Base):
    """A grid, or a micro-grid when ``parent_id`` names its grid."""

    __tablename__ = "grids"

    id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    community_id: Mapped[str] = mapped_column(ForeignKey("communities.id"), index=True)
    parent_id: Mapped[str | None] = mapped_column(ForeignKey("grids.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    # Group channels of the grid (robot webhooks): channel name -> apprise URL.
    contacts: Mapped[dict[str, str] | None] = mapped_column(JSON)


class Point(Base):
    __tablename__ = "points"

    id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    gateway: Mapped[str] = mapped_column(String(ID_LEN), index=True)
    grid_id: Mapped[str] = mapped_column(ForeignKey("grids.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    location: Mapped[str | None] = mapped_column(String(200))


class Staff(Base):
    __tablename__ = "staff"

    username: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(32))
    password_hash: Mapped[str] = mapped_column(String(255))
    # Personal channels: channel name (wecom, email...) -> apprise URL.
    contacts: Mapped[dict[str, str] | None] = mapped_column(JSON)


class StaffGrid(Base):
    __tablename__ = "staff_grids"

    username: Mapped[str] = mapped_column(
        ForeignKey("staff.username", ondelete="CASCADE"), primary_key=True
    )
    grid_id: Mapped[str] = mapped_column(ForeignKey("grids.id"), primary_key=True, index=True)


class Incident(Base):
    """A work order. ``state`` is the work-order lifecycle, ``alarm`` the device condition.

    No foreign keys into the registry: an incident from an unregistered point is still kept
    (grid null, visible to control) and history survives registry edits.
    """

    __tablename__ = "incidents"
    __table_args__ = (
        # At most one open incident per (point, type), enforced by the database so two server
        # processes sharing the MQTT load cannot both open one.
        Index(
            "uq_incidents_open_point_type",
            "point_id",
            "type",
            unique=True,
            sqlite_where=text(_OPEN_CONDITION),
            postgresql_where=text(_OPEN_CONDITION),
        ),
        Index("ix_incidents_grid_state", "grid_id", "state"),
        Index("ix_incidents_last_seen_at", "last_seen_at"),
        Index("ix_incidents_point_type", "point_id", "type"),
        Index("ix_incidents_accept_due_at", "accept_due_at"),
        Index("ix_incidents_resolve_due_at", "resolve_due_at"),
    )

    id: Mapped[str] = mapped_column(String(ULID_LEN), primary_key=True)
    point_id: Mapped[str] = mapped_column(String(ID_LEN))
    grid_id: Mapped[str | None] = mapped_column(String(ID_LEN))
    gateway: Mapped[str] = mapped_column(String(ID_LEN))
    type: Mapped[str] = mapped_column(String(48))
    severity: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    alarm: Mapped[str] = mapped_column(String(16))
    opened_at: Mapped[datetime] = mapped_column(UtcDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime())
    count: Mapped[int] = mapped_column(Integer)
    value: Mapped[float | None] = mapped_column(Float)
    # The gateway's limit and unit for ``value`` (pages say "72.5 °C, limit 60 °C").
    threshold: Mapped[float | None] = mapped_column(Float)
    unit: Mapped[str | None] = mapped_column(String(16))
    message: Mapped[str] = mapped_column(Text)
    first_event_id: Mapped[str] = mapped_column(String(ULID_LEN))
    # Server time of the last work-order change; the work-order transitions stamp it.
    state_changed_at: Mapped[datetime] = mapped_column(UtcDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # Opened by an event that arrived late (after an outage): shown to control, not paged.
    backfilled: Mapped[bool] = mapped_column(Boolean, server_default=false(), default=False)
    # Lifecycle: handling level from severity, SLA deadlines (server time; moved on
    # by the time spent deferred), who accepted, the incident this one reopens, and why it is
    # not paged (silence id, "gateway_offline"), if it is not.
    level: Mapped[str] = mapped_column(String(16), server_default="grid", default="grid")
    accept_due_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    resolve_due_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    accepted_by: Mapped[str | None] = mapped_column(String(ID_LEN))
    accepted_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    paused_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    previous_id: Mapped[str | None] = mapped_column(String(ULID_LEN))
    suppressed: Mapped[str | None] = mapped_column(String(64))
    policy: Mapped[str | None] = mapped_column(String(64))
    # A commissioning drill (a test page to the installer): never escalated, kept out of the
    # SLA statistics and the board's normal view.
    drill: Mapped[bool] = mapped_column(Boolean, server_default=false(), default=False)


class IncidentTransition(Base):
    """One entry of an incident's history: a person's action or the system's (opened,
    escalated, reminded, un-accepted, auto-resolved). Append-only."""

    __tablename__ = "incident_transitions"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    incident_id: Mapped[str] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), index=True
    )
    action: Mapped[str] = mapped_column(String(32))
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(ID_LEN))  # a username, or "system"
    role: Mapped[str | None] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    note: Mapped[str] = mapped_column(Text, default="")
    photos: Mapped[list[str] | None] = mapped_column(JSON)


    # Never loaded (raises); declared so the unit of work inserts the incident before this row.
    incident: Mapped[Incident] = relationship(lazy="raise")

class EscalationStep(Base):
    """A due escalation step: durable, so a restart neither skips nor repeats it. Executing a
    step marks it done and schedules the next one in the same transaction."""

    __tablename__ = "escalation_steps"
    __table_args__ = (
        Index("uq_escalation_steps_key", "incident_id", "step", "loop", unique=True),
        Index("ix_escalation_steps_status_due", "status", "due_at"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    incident_id: Mapped[str] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    step: Mapped[str] = mapped_column(String(32))  # workorders/escalation_steps.py: StepName
    loop: Mapped[int] = mapped_column(Integer)
    due_at: Mapped[datetime] = mapped_column(UtcDateTime())
    status: Mapped[str] = mapped_column(String(16))  # pending | done | cancelled
    done_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


    # Never loaded (raises); declared so the unit of work inserts the incident before this row.
    incident: Mapped[Incident] = relationship(lazy="raise")

class Notification(Base):
    """One message to one recipient on one channel; the delivery log. The unique key makes a
    page idempotent: a step executed twice cannot page anyone twice."""

    __tablename__ = "deliveries"
    __table_args__ = (
        Index("uq_deliveries_key", "incident_id", "step", "loop", "recipient", "channel",
              unique=True),
        Index("ix_deliveries_status_next", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    incident_id: Mapped[str] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    step: Mapped[str] = mapped_column(String(32))
    loop: Mapped[int] = mapped_column(Integer)
    recipient: Mapped[str] = mapped_column(String(ID_LEN + 8))  # username or "grid:<id>"
    channel: Mapped[str] = mapped_column(String(32))  # "app" or a contact's channel name
    target: Mapped[str | None] = mapped_column(Text)  # the apprise URL (None for app)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))  # pending | retry | sent | digested | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    error: Mapped[str | None] = mapped_column(Text)


    # Never loaded (raises); declared so the unit of work inserts the incident before this row.
    incident: Mapped[Incident] = relationship(lazy="raise")

class Roster(Base):
    """Night (or any) duty: between ``starts`` and ``ends`` (local HH:MM, may wrap midnight)
    these staff replace the grid's day owners of ``role``."""

    __tablename__ = "rosters"

    id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    grid_id: Mapped[str] = mapped_column(ForeignKey("grids.id"), index=True)
    role: Mapped[str] = mapped_column(String(32))
    starts: Mapped[str] = mapped_column(String(5))
    ends: Mapped[str] = mapped_column(String(5))
    usernames: Mapped[list[str]] = mapped_column(JSON)


class Silence(Base):
    """Incidents matching every given field are recorded but page no one until ``ends_at``."""

    __tablename__ = "silences"

    id: Mapped[str] = mapped_column(String(ULID_LEN), primary_key=True)
    gateway: Mapped[str | None] = mapped_column(String(ID_LEN))
    point_id: Mapped[str | None] = mapped_column(String(ID_LEN))
    grid_id: Mapped[str | None] = mapped_column(String(ID_LEN))
    type: Mapped[str | None] = mapped_column(String(48))
    ends_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    created_by: Mapped[str] = mapped_column(String(ID_LEN))
    note: Mapped[str] = mapped_column(Text, default="")


class IncidentEvent(Base):
    """Every edge event folded into an incident; ``event_id`` unique makes replays no-ops."""

    __tablename__ = "incident_events"

    # SQLite only auto-increments an INTEGER PRIMARY KEY, hence the variant.
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    incident_id: Mapped[str] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), index=True
    )
    event_id: Mapped[str] = mapped_column(String(ULID_LEN), unique=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    ts: Mapped[datetime] = mapped_column(UtcDateTime())
    state: Mapped[str] = mapped_column(String(16))  # active | cleared
    value: Mapped[float | None] = mapped_column(Float)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime())


class Gateway(Base):
    __tablename__ = "gateways"

    id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))  # online | offline
    last_seen_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    state_changed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    last_health: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    last_status_seq: Mapped[int | None] = mapped_column(BigInteger)
    agent_version: Mapped[str | None] = mapped_column(String(32))  # from the birth message
    # Messages received again whose seq was already recorded (QoS 1 redelivery, edge replay).
    seq_redelivered: Mapped[int] = mapped_column(BigInteger, server_default=text("0"), default=0)


class GatewaySequence(Base):
    """One range of sequence numbers received from a gateway: ``first..last``, inclusive.

    Ranges are merged as messages are recorded, so a gateway without gaps has one row; the
    holes between rows are the gaps the checker reports.
    """

    __tablename__ = "gateway_sequences"

    gateway: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    first: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    last: Mapped[int] = mapped_column(BigInteger)


class CommandResult(Base):
    """A gateway's answer to a command (``cmd/result``); stored once per event id."""

    __tablename__ = "command_results"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    event_id: Mapped[str] = mapped_column(String(ULID_LEN), unique=True)
    command_id: Mapped[str] = mapped_column(String(ULID_LEN), index=True)
    gateway: Mapped[str] = mapped_column(String(ID_LEN))
    seq: Mapped[int] = mapped_column(BigInteger)
    ts: Mapped[datetime] = mapped_column(UtcDateTime())
    ok: Mapped[bool] = mapped_column(Boolean)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime())
