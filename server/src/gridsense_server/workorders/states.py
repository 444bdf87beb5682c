"""The work-order state machine: which action moves which state where, and who may make it.

new (待受理) → accepted (处置中) → resolved (待核查) → closed (结案); returned (退回) goes back
to dispatch, deferred (延期) pauses the clock, invalid (误报) ends a false alarm; a failed
verification sends a resolved incident back to accepted (rework). Pure: no database here, so
the table can be read, tested exhaustively and documented as it is.
"""

from __future__ import annotations

from dataclasses import dataclass

# Handling level by severity: small matters stay in the grid, hard ones in the community, big
# ones in the street.
LEVEL_FOR_SEVERITY = {"minor": "grid", "major": "community", "critical": "street"}
LEVELS = ("grid", "community", "street")
# The roles that may close (verify) an incident handled at a level: the level's owner or higher.
VERIFIERS = {
    "grid": frozenset({"leader", "duty_officer", "command_centre", "control"}),
    "community": frozenset({"duty_officer", "command_centre", "control"}),
    "street": frozenset({"command_centre", "control"}),
}
STAFF = frozenset({"worker", "leader", "duty_officer", "command_centre", "control"})
SUPERVISORS = frozenset({"leader", "duty_officer", "command_centre", "control"})
WAITING = ("new", "returned")  # waiting for someone to accept: the accept clock runs


@dataclass(frozen=True, slots=True)
class Action:
    name: str
    sources: frozenset[str]
    target: str
    roles: frozenset[str]


ACTIONS: dict[str, Action] = {a.name: a for a in (
    Action("accept", frozenset({"new", "returned", "deferred"}), "accepted", STAFF),
    # A progress note while handling: keeps the state, counts as activity (no reminder).
    Action("note", frozenset({"accepted"}), "accepted", STAFF),
    Action("resolve", frozenset({"accepted"}), "resolved", STAFF),
    Action("verify", frozenset({"resolved"}), "closed", SUPERVISORS),
    Action("return", frozenset({"new", "accepted"}), "returned", STAFF),
    Action("defer", frozenset({"accepted"}), "deferred", SUPERVISORS),
    Action("invalidate", frozenset({"new", "returned", "accepted", "deferred", "resolved"}),
           "invalid", SUPERVISORS),
)}
USER_ACTIONS = tuple(ACTIONS)


class Refused(Exception):
    """An action that may not be made; ``status`` is the HTTP status that says why."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def decide(state: str, action: str, role: str, level: str, *, passed: bool = True) -> str:
    """The state ``action`` by someone of ``role`` leads to, or Refused saying why."""
    spec = ACTIONS.get(action)
    if spec is None:
        raise Refused(404, f"no action {action!r}; actions: {', '.join(USER_ACTIONS)}")
    if role not in spec.roles:
        raise Refused(403, f"a {role} may not {action}; allowed: {', '.join(sorted(spec.roles))}")
    if state not in spec.sources:
        raise Refused(409, f"cannot {action} an incident that is {state}; it must be "
                           f"{' or '.join(sorted(spec.sources))}")
    if action == "verify":
        if role not in VERIFIERS[level]:
            raise Refused(403, f"a {level}-level incident is verified by "
                               f"{', '.join(sorted(VERIFIERS[level]))}, not a {role}")
        return "closed" if passed else "accepted"  # failed verification: rework
    return spec.target


def check_close_while_active(type_: str, alarm: str, target: str, reason: str,
                             refuse_types: frozenset[str] | list[str]) -> bool:
    """Whether this action ends the work while the device still reports the alarm (the next
    alarm message would open a new incident at once): that needs a reason, and the types a
    deployment lists are refused outright until the alarm clears. Marking a false alarm
    (invalid) is never refused: a broken sensor may well stay active."""
    if target not in ("closed", "invalid") or alarm != "active":
        return False
    if target == "closed" and type_ in refuse_types:
        raise Refused(409, f"告警仍在持续，{type_} 类事件须待告警消除后才能结案 / the alarm is "
                           f"still active: a {type_} incident is closed only once it clears")
    if not reason.strip():
        raise Refused(400, "告警仍在持续，结案须填写原因（reason）/ the alarm is still active: "
                           "closing it needs a reason")
    return True


def allowed_actions(state: str, role: str, level: str) -> list[str]:
    """What ``role`` may do now (the web page shows these as buttons)."""
    result = []
    for name in USER_ACTIONS:
        try:
            decide(state, name, role, level)
        except Refused:
            continue
        result.append(name)
    return result
