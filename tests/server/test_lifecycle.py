"""The work-order state machine: its table, and — property-based, on a real database — that no
sequence of actions by any role reaches an invalid state or loses history."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lifecycle_support import database, open_incident
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from gridsense_protocol import utc_now
from gridsense_server.config import LifecycleConfig
from gridsense_server.db.models import INCIDENT_STATES, EscalationStep, Incident
from gridsense_server.registry.viewers import Viewer
from gridsense_server.workorders.states import ACTIONS, Refused, allowed_actions, decide
from gridsense_server.workorders.transitions import act, history

CONFIG = LifecycleConfig()
ROLES = ["worker", "leader", "duty_officer", "command_centre", "control"]
VIEWERS = {
    "worker": Viewer("worker-g01", "worker", frozenset({"g01", "g01-a"})),
    "leader": Viewer("leader-g01", "leader", frozenset({"g01", "g01-a"})),
    "duty_officer": Viewer("duty-ly", "duty_officer", frozenset({"g01", "g01-a", "g02"})),
    "command_centre": Viewer("centre-hx", "command_centre", frozenset({"g01", "g01-a", "g02"})),
    "control": Viewer("control", "control", None),
}


def test_the_closed_loop_and_its_refusals() -> None:
    assert decide("new", "accept", "worker", "grid") == "accepted"
    assert decide("accepted", "resolve", "worker", "grid") == "resolved"
    assert decide("resolved", "verify", "leader", "grid") == "closed"
    assert decide("resolved", "verify", "leader", "grid", passed=False) == "accepted"  # rework
    assert decide("accepted", "return", "worker", "grid") == "returned"
    assert decide("returned", "accept", "leader", "grid") == "accepted"
    assert decide("accepted", "defer", "leader", "grid") == "deferred"
    assert decide("deferred", "accept", "worker", "grid") == "accepted"
    with pytest.raises(Refused) as role:
        decide("resolved", "verify", "worker", "grid")
    assert role.value.status == 403 and "a worker may not verify" in role.value.reason
    with pytest.raises(Refused) as level:
        decide("resolved", "verify", "leader", "street")
    assert level.value.status == 403 and "street-level" in level.value.reason
    with pytest.raises(Refused) as state:
        decide("closed", "accept", "control", "grid")
    assert state.value.status == 409 and "closed" in state.value.reason
    with pytest.raises(Refused) as unknown:
        decide("new", "explode", "control", "grid")
    assert unknown.value.status == 404
    assert allowed_actions("new", "worker", "grid") == ["accept", "return"]
    assert "verify" in allowed_actions("resolved", "duty_officer", "community")


@pytest.fixture(scope="module")
def factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sessionmaker[Session]]:
    path: Path = tmp_path_factory.mktemp("lifecycle") / "server.db"
    yield from database(f"sqlite:///{path}")


Step = tuple[str, str, bool]
steps = st.lists(st.tuples(st.sampled_from(sorted(ACTIONS)), st.sampled_from(ROLES),
                           st.booleans()), max_size=25)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=steps, severity=st.sampled_from(["minor", "major", "critical"]))
def test_no_sequence_of_actions_breaks_the_state_machine(
    factory: sessionmaker[Session], steps: list[Step], severity: str
) -> None:
    incident_id = _fresh_incident(factory, severity)
    expected_history = 1  # "open"
    for action, role, passed in steps:
        with factory() as session:
            before = session.get(Incident, incident_id)
            assert before is not None
            state_before = before.state
        try:
            with factory.begin() as session:
                act(session, incident_id, VIEWERS[role], action, CONFIG, utc_now(),
                    note=f"{role} {action}", passed=passed,
                    reason="closed with the alarm active")  # the alarm never clears here
            expected_history += 1
            succeeded = True
        except Refused as refused:
            assert refused.status in (403, 409)
            succeeded = False
        with factory() as session:
            incident = session.get(Incident, incident_id)
            assert incident is not None
            assert incident.state in INCIDENT_STATES
            entries = history(session, incident_id)
            # History is never lost and replays to the current state.
            assert len(entries) == expected_history
            assert entries[-1].to_state == incident.state
            for earlier, later in itertools.pairwise(entries):
                assert later.from_state == earlier.to_state
            if succeeded:
                assert (entries[-1].action, entries[-1].from_state) == (action, state_before)
                assert entries[-1].actor == VIEWERS[role].username
            else:
                assert incident.state == state_before
            assert (incident.closed_at is not None) == (incident.state in ("closed", "invalid"))
            assert (incident.paused_at is not None) == (incident.state == "deferred")
            pending = session.scalars(select(EscalationStep.step).where(
                EscalationStep.incident_id == incident_id, EscalationStep.status == "pending"))
            kinds = {step.partition(".")[0].partition("@")[0] for step in pending}
            # Escalation runs only while someone should be acting: waiting, or handling.
            allowed = {"new": {"page"}, "returned": {"page"}, "accepted": {"remind", "unaccept"}}
            assert kinds <= allowed.get(incident.state, set())


def _fresh_incident(factory: sessionmaker[Session], severity: str) -> str:
    from gridsense_protocol import Severity

    with factory.begin() as session:
        # Close whatever is open on the point so each example opens a new incident.
        for row in session.scalars(select(Incident).where(Incident.state.not_in(
                ("closed", "invalid")))):
            row.state, row.closed_at = "closed", utc_now()
    global _seq
    _seq += 1
    return open_incident(factory, CONFIG, seq=_seq, severity=Severity(severity))


_seq = 0
