"""The door state machine on its own: every door state and incident type, driven by time."""

from __future__ import annotations

from gridsense_edge.drivers.osdp.decisions import Decision
from gridsense_edge.drivers.osdp.door import DoorPolicy, DoorStateMachine
from gridsense_protocol import AccessResult, AlarmState

GRANT = Decision(True, None, "res-1", "00aa11bb22cc33dd")
DENY = Decision(False, "unknown", None, "ffee00aa11bb22cc")
POLICY = DoorPolicy(held_open_s=30, unlock_s=5, rex_window_s=10, denied_burst=3,
                    denied_window_s=60)


def door() -> DoorStateMachine:
    machine = DoorStateMachine("gw.entrance", "b3-east", POLICY)
    machine.reader(True, 0.0)
    machine.contact(False, 0.0)  # baseline
    return machine


def test_granted_opening_is_not_forced_and_closes_cleanly() -> None:
    d = door()
    assert [e.result for e in d.decided(GRANT, "card", 100.0).events] == [AccessResult.GRANTED]
    step = d.contact(True, 102.0)
    assert [e.result for e in step.events] == [AccessResult.OPENED] and not step.incidents
    step = d.contact(False, 106.0)
    assert [e.result for e in step.events] == [AccessResult.CLOSED] and not step.incidents


def test_opening_after_the_unlock_window_is_forced_and_clears_on_close() -> None:
    d = door()
    d.decided(GRANT, "card", 100.0)
    step = d.contact(True, 106.0)  # grant lapsed after 5 s
    assert [e.result for e in step.events] == [AccessResult.FORCED_OPEN]
    assert [(i.type, i.state) for i in step.incidents] == [("door_forced", AlarmState.ACTIVE)]
    assert step.incidents[0].details["door"] == "b3-east"
    step = d.contact(False, 110.0)
    assert [(i.type, i.state) for i in step.incidents] == [("door_forced", AlarmState.CLEARED)]


def test_one_grant_authorises_one_opening() -> None:
    d = door()
    d.decided(GRANT, "card", 100.0)
    d.contact(True, 101.0)
    d.contact(False, 102.0)
    assert d.contact(True, 103.0).events[0].result is AccessResult.FORCED_OPEN


def test_request_to_exit_authorises_opening() -> None:
    d = door()
    assert d.request_to_exit(200.0).events[0].result is AccessResult.REQUEST_TO_EXIT
    assert d.contact(True, 205.0).events[0].result is AccessResult.OPENED


def test_held_open_raises_once_and_clears_on_close() -> None:
    d = door()
    d.request_to_exit(0.0)
    d.contact(True, 1.0)
    assert d.tick(30.0).incidents == []
    step = d.tick(31.5)
    assert [e.result for e in step.events] == [AccessResult.HELD_OPEN]
    assert [(i.type, i.state, i.value) for i in step.incidents] == [
        ("door_held_open", AlarmState.ACTIVE, 30.5)]
    assert d.tick(40.0).incidents == []
    step = d.contact(False, 41.0)
    assert [(i.type, i.state) for i in step.incidents] == [("door_held_open", AlarmState.CLEARED)]


def test_repeated_denials_within_the_window_raise_then_clear() -> None:
    d = door()
    assert d.decided(DENY, "card", 0.0).incidents == []
    assert d.decided(DENY, "card", 10.0).incidents == []
    step = d.decided(DENY, "pin", 20.0)
    assert [(i.type, i.state, i.value) for i in step.incidents] == [
        ("repeated_denied", AlarmState.ACTIVE, 3.0)]
    assert d.decided(DENY, "card", 25.0).incidents == []  # already active: no repeat
    assert d.tick(70.0).incidents == []
    step = d.tick(86.0)
    assert [(i.type, i.state) for i in step.incidents] == [("repeated_denied", AlarmState.CLEARED)]


def test_denials_spread_wider_than_the_window_do_not_raise() -> None:
    d = door()
    for t in (0.0, 40.0, 80.0, 120.0):
        assert d.decided(DENY, "card", t).incidents == []


def test_reader_offline_and_back() -> None:
    d = door()
    step = d.reader(False, 5.0)
    assert [e.result for e in step.events] == [AccessResult.READER_OFFLINE]
    assert [(i.type, i.state) for i in step.incidents] == [("reader_offline", AlarmState.ACTIVE)]
    assert d.state == "reader_offline"
    assert d.reader(False, 6.0).events == []
    step = d.reader(True, 9.0)
    assert [(i.type, i.state) for i in step.incidents] == [("reader_offline", AlarmState.CLEARED)]


def test_tamper_is_reported_once_per_activation() -> None:
    d = door()
    assert [e.result for e in d.tamper(True, 1.0).events] == [AccessResult.TAMPER]
    assert d.tamper(True, 2.0).events == []
    assert d.tamper(False, 3.0).events == []
    assert d.tamper(True, 4.0).events[0].result is AccessResult.TAMPER


def test_first_contact_report_is_a_baseline_not_a_forced_door() -> None:
    d = DoorStateMachine("gw.entrance", "b3-east", POLICY)
    step = d.contact(True, 0.0)
    assert step.events == [] and step.incidents == []


def test_one_card_granted_again_and_again_is_a_passback_raised_once_per_burst() -> None:
    d = door()
    other = Decision(True, None, "res-2", "11bb22cc33dd44ee")
    assert d.decided(GRANT, "card", 0.0).incidents == []
    assert d.decided(other, "card", 10.0).incidents == []  # another card: its own count
    assert d.decided(GRANT, "card", 40.0).incidents == []
    step = d.decided(GRANT, "card", 80.0)  # the third grant within 120 s
    assert [(i.type, i.state, i.value) for i in step.incidents] == [
        ("card_passback", AlarmState.ACTIVE, 3.0)]
    assert step.incidents[0].details["credential"] == "res-1"
    assert "传卡" in step.incidents[0].message
    assert d.decided(GRANT, "card", 90.0).incidents == []  # the same burst: once
    # Out of the window the card is ordinary again; a new burst raises again.
    assert d.decided(GRANT, "card", 400.0).incidents == []
    assert d.decided(GRANT, "card", 410.0).incidents == []
    assert [i.type for i in d.decided(GRANT, "card", 420.0).incidents] == ["card_passback"]


def test_passback_check_off() -> None:
    d = DoorStateMachine("gw.entrance", "b3-east", DoorPolicy(passback_grants=0))
    assert all(not d.decided(GRANT, "card", float(t)).incidents for t in range(10))


def test_passback_of_a_pass_is_counted_per_pass_not_per_inviter() -> None:
    d = DoorStateMachine("gw.entrance", "b3-east", DoorPolicy(passback_grants=3))
    visitors = [Decision(True, None, "alice", None, f"{i:016x}") for i in range(5)]
    # five visitors invited by alice come in together: no passback
    assert [i for v in visitors for i in d.decided(v, "pass", 100.0).incidents] == []
    shared = Decision(True, None, "alice", None, "00000000000000aa")
    raised = [i for _ in range(3) for i in d.decided(shared, "pass", 200.0).incidents]
    assert [(i.type, i.details["pass_id"], i.details["credential"]) for i in raised] == [
        ("card_passback", "00000000000000aa", "alice")]
    assert raised[0].message.startswith("同一张电子通行证")
