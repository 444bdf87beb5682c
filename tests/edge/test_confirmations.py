"""End-to-end acknowledgement on the gateway: a PUBACK no longer deletes a message once the
server has confirmed anything; the server's settled ranges do; what stays unconfirmed goes out
again, later each time. A real SQLite outbox throughout."""

from __future__ import annotations

import random
from pathlib import Path

from gridsense_edge.transport.confirmations import Confirmations, EndToEnd
from gridsense_edge.transport.outbox import OutboundMessage, SqliteOutbox
from gridsense_protocol import Settled, encode, utc_now

GW = "gw-01"


def submit(outbox: SqliteOutbox, kind: str = "telemetry") -> OutboundMessage:
    return outbox.submit(lambda seq: OutboundMessage(
        topic=f"gridsense/v1/{GW}/{kind}", payload=b"p" * 50, kind=kind, event_id=f"E{seq:08d}",
        seq=seq))


def settled(*ranges: tuple[int, int], gateway: str = GW) -> bytes:
    return encode(Settled(gateway=gateway, seq=1, ts=utc_now(), ranges=list(ranges)))


def sent(outbox: SqliteOutbox, end_to_end: EndToEnd, count: int) -> list[OutboundMessage]:
    """``count`` messages stored, claimed and acknowledged by the broker."""
    for _ in range(count):
        submit(outbox)
    outbox.flush()
    claimed = outbox.claim(count)
    for message in claimed:
        end_to_end.delivered(message)
    outbox.flush()
    return claimed


def test_auto_deletes_on_puback_until_the_server_confirms_then_only_on_its_word(
    tmp_path: Path,
) -> None:
    outbox = SqliteOutbox(tmp_path)
    end_to_end = EndToEnd(GW, outbox, "auto")
    sent(outbox, end_to_end, 3)
    assert outbox.depth == 0  # an older server: the PUBACK was the end
    assert end_to_end.received(settled((0, 2)))  # a newer server names them all the same
    assert outbox.server_confirms
    sent(outbox, end_to_end, 4)  # seqs 3..6
    assert outbox.depth == 4 and len(end_to_end.confirmations) == 4
    end_to_end.received(settled((3, 4), (6, 6)))
    outbox.flush()
    assert outbox.depth == 1 and outbox.stats()["confirmed"] == 3
    outbox.close()
    reopened = SqliteOutbox(tmp_path)  # remembered: a restart does not go back to PUBACKs
    assert reopened.server_confirms and reopened.depth == 1
    assert [m.seq for m in reopened.claim(10)] == [5]
    reopened.close()


def test_unconfirmed_messages_are_sent_again_with_growing_deadlines(tmp_path: Path) -> None:
    outbox = SqliteOutbox(tmp_path)
    confirmations = Confirmations(timeout_s=10.0, timeout_max_s=40.0, rng=random.Random(3))
    end_to_end = EndToEnd(GW, outbox, "server", confirmations)
    [first, second] = sent(outbox, end_to_end, 2)
    assert outbox.depth == 2
    assert confirmations.due(1e12, 10) == [first.seq, second.seq]  # far in the future: both due
    assert sorted(outbox.resend([first.seq, second.seq])) == [first.seq, second.seq]
    again = outbox.claim(10)
    assert [m.seq for m in again] == [first.seq, second.seq]
    assert all(m.offline for m in again)  # a re-send goes out flagged backfill
    confirmations.sent(first.seq, 0.0)  # the second attempt's deadline: 10-20 s... doubled
    assert confirmations.due(9.99, 10) == []
    assert confirmations.due(20.0, 10) == [first.seq]
    confirmations.confirm([(first.seq, second.seq)])
    assert len(confirmations) == 0 and confirmations.room == confirmations.max_unconfirmed
    outbox.close()


def test_the_unconfirmed_bound_stops_new_sends_and_a_wide_range_confirms_them(
    tmp_path: Path,
) -> None:
    outbox = SqliteOutbox(tmp_path)
    end_to_end = EndToEnd(GW, outbox, "server", Confirmations(max_unconfirmed=10))
    sent(outbox, end_to_end, 10)
    assert end_to_end.room == 0
    assert end_to_end.resend_due(3) == 0  # none due yet
    end_to_end.confirmations.due(1e12, 3)  # three past their deadline: their re-send has room
    assert end_to_end.room == 3
    end_to_end.received(settled((0, 10**12)))  # a backlog confirmed at once
    outbox.flush()
    assert end_to_end.room == 10 and outbox.depth == 0
    outbox.close()


def test_broker_mode_and_bad_settled_messages_change_nothing(tmp_path: Path) -> None:
    outbox = SqliteOutbox(tmp_path)
    end_to_end = EndToEnd(GW, outbox, "broker")
    sent(outbox, end_to_end, 2)
    assert outbox.depth == 0
    assert not end_to_end.received(settled((0, 1)))
    assert not outbox.server_confirms
    auto = EndToEnd(GW, outbox, "auto")
    assert not auto.received(b'{"v": 1, "ranges": [[5, 1]]}')
    assert not auto.received(settled((0, 1), gateway="gw-02"))  # another gateway's payload
    assert auto.counters["settled_invalid"] == 2 and not outbox.server_confirms
    outbox.close()
