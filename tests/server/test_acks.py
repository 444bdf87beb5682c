"""The ack ledger: acks only after every effect is durable and the seq recorded, once each, in
the order the messages arrived; never for a packet id of an earlier connection."""

from __future__ import annotations

from datetime import UTC, datetime

from gridsense_protocol import GatewayState, Status, Telemetry
from gridsense_server.ingest.acks import AckLedger, AckToken, Delivery

TS = datetime(2024, 5, 1, tzinfo=UTC)


class Harness:
    def __init__(self) -> None:
        self.acked: list[AckToken] = []
        self.generation = 1
        self.to_settle: list[Delivery] = []
        self.ledger = AckLedger(self.acked.extend, lambda: self.generation,
                                lambda d: self.to_settle.append(d))

    def settle_all(self) -> None:
        waiting, self.to_settle = self.to_settle, []
        for delivery in waiting:
            self.ledger.settled(delivery)


def telemetry(seq: int) -> Telemetry:
    return Telemetry.model_validate({"gateway": "gw-01", "seq": seq, "ts": TS, "readings": [
        {"point": "gw-01.p", "metric": "temperature", "value": 1.0, "unit": "°C", "ts": TS}]})


def test_acks_wait_for_every_effect_and_the_seq_record_and_keep_arrival_order() -> None:
    h = Harness()
    first = Delivery(telemetry(1), (1, 10, 1))
    second = Delivery(telemetry(2), (1, 11, 1))
    h.ledger.register(first, 2)
    h.ledger.register(second, 1)
    second.part_done()
    h.settle_all()
    assert h.acked == []  # the second is ready, but the first arrived before it
    first.part_done()
    assert h.acked == [] and h.to_settle == []  # one effect of two
    first.part_done()
    assert h.acked == [] and h.to_settle == [first]  # durable, seq not recorded yet
    h.settle_all()
    assert h.acked == [(1, 10, 1), (1, 11, 1)]
    assert len(h.ledger) == 0


def test_status_and_invalid_messages_need_no_seq_record_and_qos0_no_ack() -> None:
    h = Harness()
    status = Delivery(Status(gateway="gw-01", seq=7, ts=TS, state=GatewayState.ONLINE),
                      (1, 1, 1))
    assert status.sequence is None  # reuses the latest seq: not recorded
    invalid = Delivery(None, (1, 2, 1))
    qos0 = Delivery(telemetry(3), None)
    h.ledger.register(status, 1)
    h.ledger.register(invalid, 0)
    h.ledger.register(qos0, 1)
    status.part_done()
    qos0.part_done()
    h.settle_all()
    assert h.acked == [(1, 1, 1), (1, 2, 1)]


def test_a_message_from_an_earlier_connection_is_never_acked() -> None:
    h = Harness()
    old = Delivery(telemetry(1), (1, 5, 1))
    h.ledger.register(old, 1)
    h.generation = 2  # reconnected: packet id 5 now means another message, or nothing
    new = Delivery(telemetry(1), (2, 5, 1))  # the broker's redelivery of the same message
    h.ledger.register(new, 1)
    new.part_done()
    h.settle_all()
    assert h.acked == [(2, 5, 1)]  # not held back by the stale one, acked once
    old.part_done()
    h.settle_all()
    assert h.acked == [(2, 5, 1)]
