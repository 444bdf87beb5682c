"""Sequence ranges per gateway on SQLite and PostgreSQL: merged on insert, gaps, redeliveries."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from gridsense_protocol import INT64_MAX
from gridsense_server.acks import holes, merge, to_ranges
from gridsense_server.db import make_engine, make_session_factory, upgrade
from gridsense_server.db.models import GatewaySequence
from gridsense_server.db.sequences import SequenceStore, ranges, summaries


@pytest.fixture
def factory(db_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(db_url)
    upgrade(engine)
    yield make_session_factory(engine)
    engine.dispose()


def test_range_arithmetic() -> None:
    assert to_ranges([5, 1, 2, 3, 3, 9]) == [(1, 3), (5, 5), (9, 9)]
    assert merge([(5, 7), (1, 2), (3, 4), (10, 12), (11, 11)]) == [(1, 7), (10, 12)]
    assert holes([(1, 3), (5, 5), (9, 12)]) == [(4, 4), (6, 8)]


def test_the_largest_seq_the_protocol_allows_is_recorded_next_to_its_neighbours(
    factory: sessionmaker[Session],
) -> None:
    # Found by the ingest fuzzer: the neighbour query bound 2**63 (the seq plus one), which
    # SQLite cannot take, so a valid message with this seq was dead-lettered.
    store = SequenceStore(factory)
    top = INT64_MAX
    assert store.record([("gw-01", top)]) == {"gw-01": 0}
    assert store.record([("gw-01", top - 1), ("gw-01", 0)]) == {"gw-01": 0}
    assert store.record([("gw-01", top)]) == {"gw-01": 1}
    with factory() as session:
        assert ranges(session, "gw-01") == [(0, 0), (top - 1, top)]


def test_ranges_merge_gaps_show_and_close_and_redeliveries_are_counted(
    factory: sessionmaker[Session],
) -> None:
    store = SequenceStore(factory)
    assert store.record([("gw-01", s) for s in (1, 2, 3)]) == {"gw-01": 0}
    assert store.record([("gw-01", 7), ("gw-01", 8), ("gw-02", 40)]) == {"gw-01": 0, "gw-02": 0}
    with factory() as session:
        assert ranges(session, "gw-01") == [(1, 3), (7, 8)]
        summary = summaries(session)["gw-01"]
    assert (summary.first, summary.last, summary.gaps, summary.missing) == (1, 8, 1, 3)

    # 2 and 8 again (redelivered), 4..6 fill the hole, 9 extends, 6 twice in one call.
    assert store.record([("gw-01", s) for s in (2, 4, 5, 6, 6, 8, 9)]) == {"gw-01": 3}
    with factory() as session:
        assert ranges(session, "gw-01") == [(1, 9)]
        assert session.scalar(select(func.count()).select_from(GatewaySequence)
                              .where(GatewaySequence.gateway == "gw-01")) == 1
        summary = summaries(session, ["gw-01"])["gw-01"]
    assert (summary.gaps, summary.missing, summary.received, summary.redelivered) == (0, 0, 9, 3)

    # A gateway whose numbering arrives out of order (a replay after live messages).
    store.record([("gw-03", s) for s in (10, 11, 12)])
    store.record([("gw-03", s) for s in (1, 2, 3, 4, 5, 6, 7, 8, 9)])
    with factory() as session:
        assert ranges(session, "gw-03") == [(1, 12)]
        assert set(summaries(session)) == {"gw-01", "gw-02", "gw-03"}
