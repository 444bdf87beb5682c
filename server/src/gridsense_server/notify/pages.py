"""Put messages into the delivery log, in the caller's transaction.

The unique key (incident, step, loop, recipient, channel) is what makes a page idempotent: an
escalation step executed twice (two processes, a restart) finds its rows already there.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..db.models import Grid, Incident, Notification, Staff
from ..registry.grids import grid_chain
from .links import LinkSigner


@dataclass(frozen=True, slots=True)
class Page:
    recipient: str  # username, or "grid:<id>" for a group robot
    channel: str
    target: str | None  # apprise URL; None for the app stream


def pages_for(session: Session, incident: Incident, usernames: list[str],
              channels: list[str]) -> list[Page]:
    """Each person on each channel they have; group channels once, for the grid that has it."""
    pages: list[Page] = []
    people = {s.username: s for s in session.scalars(
        select(Staff).where(Staff.username.in_(usernames)))}
    for channel in channels:
        if channel.startswith("group:"):
            name = channel.removeprefix("group:")
            grid = _nearest_with(grid_chain(session, incident.grid_id), name)
            if grid is not None and grid.contacts is not None:
                pages.append(Page(f"grid:{grid.id}", channel, grid.contacts[name]))
            continue
        for username in usernames:
            person = people.get(username)
            if person is None:
                continue
            if channel == "app":
                pages.append(Page(username, "app", None))
            elif person.contacts and channel in person.contacts:
                pages.append(Page(username, channel, person.contacts[channel]))
    return pages


def _nearest_with(chain: list[Grid], name: str) -> Grid | None:
    return next((g for g in chain if g.contacts and name in g.contacts), None)


def describe(incident: Incident) -> str:
    return f"{incident.type} at {incident.point_id} ({incident.severity})"


def enqueue(session: Session, incident: Incident, step: str, loop: int, pages: list[Page],
            title: str, text: str, links: LinkSigner, now: datetime) -> list[Page]:
    """Insert the deliveries not already logged; returns the new ones."""
    existing: set[tuple[str, str]] = set(session.execute(  # type: ignore[arg-type]
        select(Notification.recipient, Notification.channel).where(
            Notification.incident_id == incident.id, Notification.step == step,
            Notification.loop == loop)
    ))
    added = []
    for page in pages:
        if (page.recipient, page.channel) in existing:
            continue
        existing.add((page.recipient, page.channel))
        user = page.recipient.removeprefix("grid:")
        body = f"{text}\n{links.link(incident.id, user, now)}"
        session.add(Notification(
            incident_id=incident.id, step=step, loop=loop, recipient=page.recipient,
            channel=page.channel, target=page.target, title=title[:200], body=body,
            status="pending", attempts=0, next_attempt_at=now, created_at=now,
        ))
        added.append(page)
    return added
