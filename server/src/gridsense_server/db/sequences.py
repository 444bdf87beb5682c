"""Which sequence numbers each gateway's messages carried: durable ranges, gaps, redeliveries.

A seq is recorded after its message's effect is durable and before the message is acknowledged;
ranges are merged on insert (a gateway without gaps is one row).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import and_, bindparam, delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from gridsense_protocol import INT64_MAX, utc_now

from ..acks import Range, merge, to_ranges
from .models import Gateway, GatewaySequence


@dataclass(frozen=True, slots=True)
class SequenceSummary:
    first: int
    last: int
    ranges: int
    received: int
    redelivered: int

    @property
    def gaps(self) -> int:
        return self.ranges - 1

    @property
    def missing(self) -> int:
        return self.last - self.first + 1 - self.received


class SequenceStore:
    def __init__(self, factory: sessionmaker[Session]) -> None:
        self.factory = factory

    def record(self, received: Iterable[tuple[str, int]]) -> dict[str, int]:
        """``record_sequences`` in a transaction of its own."""
        with self.factory.begin() as session:
            return record_sequences(session, received)


def record_sequences(session: Session, received: Iterable[tuple[str, int]]) -> dict[str, int]:
    """Record (gateway, seq) pairs inside the caller's transaction — the one that made their
    effect durable, where there is one. Returns redeliveries per gateway (pairs whose seq was
    already recorded, or repeated in this call)."""
    by_gateway: defaultdict[str, list[int]] = defaultdict(list)
    for gateway, seq in received:
        by_gateway[gateway].append(seq)
    if not by_gateway:
        return {}
    names = sorted(by_gateway)
    _lock_gateways(session, names)
    redelivered: dict[str, int] = {}
    for start in range(0, len(names), _CHUNK):
        chunk = {name: by_gateway[name] for name in names[start:start + _CHUNK]}
        redelivered.update(_record_chunk(session, chunk))
    counts = [{"gw": g, "n": n} for g, n in redelivered.items() if n]
    if counts:
        gateways = Gateway.__table__
        session.execute(
            update(gateways).where(gateways.c.id == bindparam("gw"))
            .values(seq_redelivered=gateways.c.seq_redelivered + bindparam("n")),
            counts,
        )
    return redelivered


def summaries(session: Session,
              gateways: Iterable[str] | None = None) -> dict[str, SequenceSummary]:
    """Per gateway: first/last seq, ranges, received count, redeliveries."""
    query = select(
        GatewaySequence.gateway, func.min(GatewaySequence.first),
        func.max(GatewaySequence.last), func.count(),
        func.sum(GatewaySequence.last - GatewaySequence.first + 1),
    ).group_by(GatewaySequence.gateway)
    redelivered_query = select(Gateway.id, Gateway.seq_redelivered)
    if gateways is not None:
        wanted = sorted(set(gateways))
        query = query.where(GatewaySequence.gateway.in_(wanted))
        redelivered_query = redelivered_query.where(Gateway.id.in_(wanted))
    redelivered = dict(session.execute(redelivered_query).all())
    return {
        gateway: SequenceSummary(int(first), int(last), int(count), int(total),
                                 int(redelivered.get(gateway) or 0))
        for gateway, first, last, count, total in session.execute(query)
    }


def ranges(session: Session, gateway: str) -> list[Range]:
    """The gateway's received ranges, in order."""
    rows = session.execute(
        select(GatewaySequence.first, GatewaySequence.last)
        .where(GatewaySequence.gateway == gateway).order_by(GatewaySequence.first)
    )
    return [(int(first), int(last)) for first, last in rows]


_CHUNK = 200  # gateways per range query (bound parameters stay well under SQLite's limit)


def _lock_gateways(session: Session, names: list[str]) -> None:
    """Create missing gateway rows, then lock them all, in a fixed order (no deadlocks)."""
    now = utc_now()
    rows = [{"id": n, "state": "online", "state_changed_at": now, "seq_redelivered": 0}
            for n in names]
    dialect = session.get_bind().dialect.name
    insert = sqlite_insert if dialect == "sqlite" else postgresql_insert
    for start in range(0, len(rows), _CHUNK):
        session.execute(insert(Gateway).on_conflict_do_nothing(index_elements=["id"]),
                        rows[start:start + _CHUNK])
    if dialect != "sqlite":  # SQLite: the insert above already holds the database's write lock
        for start in range(0, len(names), _CHUNK):
            session.execute(select(Gateway.id).where(Gateway.id.in_(names[start:start + _CHUNK]))
                            .order_by(Gateway.id).with_for_update())


def _record_chunk(session: Session, by_gateway: dict[str, list[int]]) -> dict[str, int]:
    incoming = {name: to_ranges(seqs) for name, seqs in by_gateway.items()}
    t = GatewaySequence.__table__
    # Neighbours touch a range from one below to one above it; clamped, since the protocol
    # allows a seq of 2**63-1 and one above it is no 64-bit integer a database can bind.
    overlapping = or_(*(
        and_(t.c.gateway == name, t.c.last >= ranges_[0][0] - 1,
             t.c.first <= min(ranges_[-1][1] + 1, INT64_MAX))
        for name, ranges_ in incoming.items()
    ))
    existing: defaultdict[str, list[Range]] = defaultdict(list)
    for name, first, last in session.execute(select(t.c.gateway, t.c.first, t.c.last)
                                             .where(overlapping)):
        existing[name].append((int(first), int(last)))
    redelivered: dict[str, int] = {}
    inserts: list[dict[str, object]] = []
    updates: list[dict[str, object]] = []
    deletes: list[dict[str, object]] = []
    for name, ranges_ in incoming.items():
        rows = existing.get(name, [])
        repeated = len(by_gateway[name]) - sum(b - a + 1 for a, b in ranges_)
        redelivered[name] = repeated + sum(_overlap(a, b, rows) for a, b in ranges_)
        old = dict(rows)  # first -> last
        kept: set[int] = set()
        for first, last in merge(rows + ranges_):
            if first not in old:
                inserts.append({"gateway": name, "first": first, "last": last})
                continue
            kept.add(first)
            if old[first] != last:
                updates.append({"gw": name, "f": first, "l": last})
        deletes += [{"gw": name, "f": first} for first in old if first not in kept]
    if deletes:
        session.execute(delete(t).where(t.c.gateway == bindparam("gw"),
                                         t.c.first == bindparam("f")), deletes)
    if updates:
        session.execute(update(t).where(t.c.gateway == bindparam("gw"),
                                        t.c.first == bindparam("f"))
                        .values(last=bindparam("l")), updates)
    if inserts:
        session.execute(t.insert(), inserts)
    return redelivered


def _overlap(first: int, last: int, rows: list[Range]) -> int:
    return sum(max(0, min(last, b) - max(first, a) + 1) for a, b in rows)
