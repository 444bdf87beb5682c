"""The acknowledgement contract: acks only after every named effect is durable and the seq
recorded, once each, in arrival order; never for a packet id of an earlier connection. The
routing table names each message type's effects; settled ranges say what is durable."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from gridsense_protocol import (
    AccessEvent,
    CommandResult,
    GatewayState,
    Health,
    Incident,
    Status,
    Telemetry,
)
from gridsense_server.acks import (
    ACCESS_LOG_ROWS,
    COMMAND_RESULT_ROW,
    GATEWAY_ROW,
    INCIDENT_ROWS,
    INFLUX_LINES,
    NO_EFFECTS,
    AckLedger,
    AckToken,
    Effects,
    InboundMessage,
    SettledRanges,
)
from gridsense_server.app import ServerApp
from gridsense_server.config import ServerConfig
from gridsense_server.ingest.router import Router, Services

TS = datetime(2024, 5, 1, tzinfo=UTC)


class Harness:
    """A ledger whose settler records nothing: the test says when the seq is recorded."""

    def __init__(self) -> None:
        self.acked: list[AckToken] = []
        self.generation = 1
        self.to_record: list[InboundMessage] = []
        self.ranges = SettledRanges()
        self.ledger = AckLedger(self.acked.extend, lambda: self.generation, self._settle)

    def _settle(self, message: InboundMessage) -> None:
        if message.needs_recording:
            self.to_record.append(message)
        else:
            self._settled(message)

    def _settled(self, message: InboundMessage) -> None:
        if message.sequence is not None and not message.lost:
            self.ranges.add(*message.sequence)
        self.ledger.settled(message)

    def record_all(self) -> None:
        waiting, self.to_record = self.to_record, []
        for message in waiting:
            self._settled(message)


def telemetry(seq: int) -> Telemetry:
    return Telemetry.model_validate({"gateway": "gw-01", "seq": seq, "ts": TS, "readings": [
        {"point": "gw-01.p", "metric": "temperature", "value": 1.0, "unit": "°C", "ts": TS}]})


def test_acks_wait_for_every_effect_and_the_seq_record_and_keep_arrival_order() -> None:
    h = Harness()
    first = InboundMessage(telemetry(1), (1, 10, 1))
    second = InboundMessage(telemetry(2), (1, 11, 1))
    h.ledger.register(first, Effects(INFLUX_LINES, GATEWAY_ROW))
    h.ledger.register(second, Effects(INFLUX_LINES))
    second.done(INFLUX_LINES)
    h.record_all()
    assert h.acked == []  # the second is ready, but the first arrived before it
    first.done(GATEWAY_ROW)
    assert h.acked == [] and h.to_record == []  # one effect of two
    first.done(INFLUX_LINES)
    assert h.acked == [] and h.to_record == [first]  # durable, seq not recorded yet
    h.record_all()
    assert h.acked == [(1, 10, 1), (1, 11, 1)]
    assert len(h.ledger) == 0


def test_an_effect_is_reported_by_name_and_only_once() -> None:
    h = Harness()
    message = InboundMessage(telemetry(1), (1, 1, 1))
    h.ledger.register(message, Effects(INFLUX_LINES, GATEWAY_ROW))
    with pytest.raises(RuntimeError, match="incident_rows was not pending"):
        message.done(INCIDENT_ROWS)
    message.done(INFLUX_LINES)
    with pytest.raises(RuntimeError, match="influx_lines was not pending"):
        message.done(INFLUX_LINES)


def test_an_effect_recording_the_seq_in_its_transaction_skips_the_settler() -> None:
    h = Harness()
    result = InboundMessage(telemetry(4), (1, 1, 1))
    h.ledger.register(result, Effects(COMMAND_RESULT_ROW))
    result.done(COMMAND_RESULT_ROW)
    assert h.to_record == [] and h.acked == [(1, 1, 1)]
    assert h.ranges.settled_ranges("gw-01") == [(4, 4)]


def test_a_failed_effect_is_acked_but_its_seq_neither_recorded_nor_settled() -> None:
    h = Harness()
    poison = InboundMessage(telemetry(5), (1, 1, 1))
    h.ledger.register(poison, Effects(INFLUX_LINES, ACCESS_LOG_ROWS))
    poison.failed(ACCESS_LOG_ROWS)
    poison.done(INFLUX_LINES)
    assert h.to_record == [] and h.acked == [(1, 1, 1)]
    assert h.ranges.settled_ranges("gw-01") == []  # the checker reports it missing


def test_status_and_invalid_messages_need_no_seq_record_and_qos0_no_ack() -> None:
    h = Harness()
    status = InboundMessage(Status(gateway="gw-01", seq=7, ts=TS, state=GatewayState.ONLINE),
                            (1, 1, 1))
    assert status.sequence is None  # reuses the latest seq: not recorded
    invalid = InboundMessage(None, (1, 2, 1))
    qos0 = InboundMessage(telemetry(3), None)
    h.ledger.register(status, Effects(GATEWAY_ROW))
    h.ledger.register(invalid, NO_EFFECTS)
    h.ledger.register(qos0, Effects(INFLUX_LINES))
    status.done(GATEWAY_ROW)
    qos0.done(INFLUX_LINES)
    h.record_all()
    assert h.acked == [(1, 1, 1), (1, 2, 1)]


def test_a_message_from_an_earlier_connection_is_never_acked() -> None:
    h = Harness()
    old = InboundMessage(telemetry(1), (1, 5, 1))
    h.ledger.register(old, Effects(INFLUX_LINES))
    h.generation = 2  # reconnected: packet id 5 now means another message, or nothing
    new = InboundMessage(telemetry(1), (2, 5, 1))  # the broker's redelivery of the same message
    h.ledger.register(new, Effects(INFLUX_LINES))
    new.done(INFLUX_LINES)
    h.record_all()
    assert h.acked == [(2, 5, 1)]  # not held back by the stale one, acked once
    old.done(INFLUX_LINES)
    h.record_all()
    assert h.acked == [(2, 5, 1)]


def test_settled_ranges_per_gateway_merge_in_any_order() -> None:
    ranges = SettledRanges()
    for seq in (1, 2, 3, 7, 5, 6, 9, 2):
        ranges.add("gw-01", seq)
    ranges.add("gw-02", 40)
    assert ranges.settled_ranges("gw-01") == [(1, 3), (5, 7), (9, 9)]
    ranges.add("gw-01", 4)
    assert ranges.settled_ranges("gw-01") == [(1, 7), (9, 9)]
    assert ranges.settled_ranges("gw-02") == [(40, 40)]
    assert ranges.settled_ranges("gw-03") == []
    assert ranges.gateways() == ["gw-01", "gw-02"]


def test_the_routing_table_names_each_message_types_effects(tmp_path: Path) -> None:
    config = ServerConfig.model_validate({"database": {"url": f"sqlite:///{tmp_path}/s.db"}})
    app = ServerApp(config)
    router = Router([], Services(app.writer, app.incidents, app.gateways, app.commands,
                                 access=app.access_log), app.counters)
    effects = {kind.__name__: {e.name for e in route.effects.effects}
               for kind, route in router.routes.items()}
    assert effects == {
        Telemetry.__name__: {"influx_lines"},
        Incident.__name__: {"incident_rows"},
        Health.__name__: {"influx_lines", "gateway_row"},
        Status.__name__: {"gateway_row"},
        CommandResult.__name__: {"command_result_row"},
        AccessEvent.__name__: {"influx_lines", "access_log_rows"},
    }  # no snapshot store given: snapshots are acked and dropped
    # Health and status share one worker, so a gateway's row sees them in arrival order.
    assert router.routes[Health].worker is router.routes[Status].worker
    app.engine.dispose()
