"""One door's state, from what its reader reports: contact, request-to-exit, decisions, tamper."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from gridsense_protocol import AccessResult, AlarmState, Severity

from ...events import AccessRecord, IncidentEvent
from .decisions import Decision


@dataclass(frozen=True, slots=True)
class DoorPolicy:
    held_open_s: float = 30.0
    unlock_s: float = 5.0
    rex_window_s: float = 10.0
    denied_burst: int = 5
    denied_window_s: float = 120.0
    # One card granted this many times at the door within the window: passed back through the
    # door to let others in (the card-borne form of tailgating). 0 turns the check off.
    passback_grants: int = 3
    passback_window_s: float = 120.0
    forced_severity: Severity = Severity.MAJOR
    held_severity: Severity = Severity.MINOR
    denied_severity: Severity = Severity.MINOR
    passback_severity: Severity = Severity.MINOR
    offline_severity: Severity = Severity.MAJOR


@dataclass(frozen=True, slots=True)
class DoorEvent:
    result: AccessResult
    ts: float
    method: str = "door"
    decision: Decision | None = None

    def record(self, point: str, door: str, credentials_version: int) -> AccessRecord:
        """The access event: a card travels as its hash, a pass as its id and holder."""
        d = self.decision
        return AccessRecord(
            point=point, door=door, result=self.result, ts=_dt(self.ts), method=self.method,
            credential=d.credential if d else None,
            card=d.hashed if d and self.method == "card" else None,
            reason=d.reason if d else None,
            credentials_version=credentials_version if d else None,
            pass_id=d.pass_id if d else None)


@dataclass
class Step:
    events: list[DoorEvent] = field(default_factory=list)
    incidents: list[IncidentEvent] = field(default_factory=list)

    def extend(self, other: Step) -> Step:
        self.events.extend(other.events)
        self.incidents.extend(other.incidents)
        return self


def _dt(now: float) -> datetime:
    return datetime.fromtimestamp(now, UTC)


class DoorStateMachine:
    def __init__(self, point: str, door: str, policy: DoorPolicy) -> None:
        self.point = point
        self.door = door
        self.policy = policy
        self.is_open: bool | None = None  # unknown until the reader reports its inputs
        self.opened_at: float | None = None
        self.reader_online: bool | None = None
        self.tampered = False
        self._authorised_until = float("-inf")
        self._forced = False
        self._held = False
        self._denials: deque[float] = deque(maxlen=max(policy.denied_burst, 1))
        self._denied_active = False
        # Recent grants (time, credential), bounded; a credential raises once per burst.
        self._grants: deque[tuple[float, str]] = deque(maxlen=64)
        self._passback_raised: dict[str, float] = {}

    @property
    def state(self) -> str:
        if self.reader_online is False:
            return "reader_offline"
        if self._forced:
            return "forced_open"
        if self._held:
            return "held_open"
        return {None: "unknown", True: "open", False: "closed"}[self.is_open]

    def _incident(
        self, kind: str, state: AlarmState, now: float, severity: Severity, value: float,
        threshold: float | None, unit: str, message: str, **details: Any,
    ) -> IncidentEvent:
        return IncidentEvent(
            point=self.point, type=kind, severity=severity, state=state, ts=_dt(now),
            value=value, threshold=threshold, unit=unit, message=message,
            details={"door": self.door, **details},
        )

    # ---- inputs ----

    def decided(self, decision: Decision, method: str, now: float) -> Step:
        if decision.granted:
            self._authorised_until = now + self.policy.unlock_s
            step = Step([DoorEvent(AccessResult.GRANTED, now, method, decision)])
            # A pass is passed back as a pass: its holder may have invited several visitors
            # who come in together, each with a pass of their own.
            if decision.pass_id is not None or decision.credential is not None:
                step.incidents.extend(self._passback(decision, now))
            return step
        step = Step([DoorEvent(AccessResult.DENIED, now, method, decision)])
        self._denials.append(now)
        window = self.policy.denied_window_s
        burst = self.policy.denied_burst
        if (not self._denied_active and len(self._denials) >= burst
                and now - self._denials[0] <= window):
            self._denied_active = True
            step.incidents.append(self._incident(
                "repeated_denied", AlarmState.ACTIVE, now, self.policy.denied_severity,
                float(len(self._denials)), float(burst), "",
                f"{len(self._denials)} denials within {window:g} s at door {self.door}",
                window_s=window))
        return step

    def _passback(self, decision: Decision, now: float) -> list[IncidentEvent]:
        policy = self.policy
        if policy.passback_grants <= 0:
            return []
        credential = f"pass:{decision.pass_id}" if decision.pass_id else str(decision.credential)
        self._grants.append((now, credential))
        window = policy.passback_window_s
        recent = sum(1 for t, c in self._grants if c == credential and now - t <= window)
        last = self._passback_raised.get(credential)
        if recent < policy.passback_grants or (last is not None and now - last <= window):
            return []
        self._passback_raised = {c: t for c, t in self._passback_raised.items()
                                 if now - t <= window}  # bounded by the grants in a window
        self._passback_raised[credential] = now
        what = ("同一张电子通行证", "one pass") if decision.pass_id else ("同一张卡", "one card")
        return [self._incident(
            "card_passback", AlarmState.ACTIVE, now, policy.passback_severity, float(recent),
            float(policy.passback_grants), "",
            f"{what[0]} {window:g} 秒内在 {self.door} 通过 {recent} 次，疑似传卡尾随 / {what[1]} "
            f"granted {recent} times within {window:g} s at door {self.door}: passed back?",
            credential=decision.credential, window_s=window,
            **({"pass_id": decision.pass_id} if decision.pass_id else {}))]

    def request_to_exit(self, now: float) -> Step:
        self._authorised_until = max(self._authorised_until, now + self.policy.rex_window_s)
        return Step([DoorEvent(AccessResult.REQUEST_TO_EXIT, now, "rex")])

    def contact(self, is_open: bool, now: float) -> Step:
        previous, self.is_open = self.is_open, is_open
        if previous is None or previous == is_open:
            if previous is None and is_open:
                self.opened_at = now
            return Step()
        if is_open:
            self.opened_at = now
            if now <= self._authorised_until:
                self._authorised_until = float("-inf")  # one grant, one opening
                return Step([DoorEvent(AccessResult.OPENED, now)])
            self._forced = True
            return Step(
                [DoorEvent(AccessResult.FORCED_OPEN, now)],
                [self._incident("door_forced", AlarmState.ACTIVE, now,
                                self.policy.forced_severity, 1.0, None, "",
                                f"door {self.door} opened without a grant or request-to-exit")],
            )
        step = Step([DoorEvent(AccessResult.CLOSED, now)])
        open_s = now - self.opened_at if self.opened_at is not None else 0.0
        if self._forced:
            self._forced = False
            step.incidents.append(self._incident(
                "door_forced", AlarmState.CLEARED, now, self.policy.forced_severity, 0.0, None,
                "", f"door {self.door} closed again", open_s=round(open_s, 1)))
        if self._held:
            self._held = False
            step.incidents.append(self._incident(
                "door_held_open", AlarmState.CLEARED, now, self.policy.held_severity,
                round(open_s, 1), self.policy.held_open_s, "s", f"door {self.door} closed"))
        self.opened_at = None
        return step

    def tamper(self, active: bool, now: float) -> Step:
        changed = active != self.tampered
        self.tampered = active
        return Step([DoorEvent(AccessResult.TAMPER, now, "reader")] if changed and active else [])

    def reader(self, online: bool, now: float) -> Step:
        previous, self.reader_online = self.reader_online, online
        if previous == online or (previous is None and online):
            return Step()
        if not online:
            return Step(
                [DoorEvent(AccessResult.READER_OFFLINE, now, "reader")],
                [self._incident("reader_offline", AlarmState.ACTIVE, now,
                                self.policy.offline_severity, 0.0, None, "",
                                f"reader of door {self.door} stopped answering")],
            )
        step = Step([DoorEvent(AccessResult.READER_ONLINE, now, "reader")])
        if previous is False:
            step.incidents.append(self._incident(
                "reader_offline", AlarmState.CLEARED, now, self.policy.offline_severity, 1.0,
                None, "", f"reader of door {self.door} answers again"))
        return step

    def tick(self, now: float) -> Step:
        step = Step()
        if self.is_open and self.opened_at is not None and not self._held:
            open_s = now - self.opened_at
            if open_s > self.policy.held_open_s:
                self._held = True
                step.events.append(DoorEvent(AccessResult.HELD_OPEN, now))
                step.incidents.append(self._incident(
                    "door_held_open", AlarmState.ACTIVE, now, self.policy.held_severity,
                    round(open_s, 1), self.policy.held_open_s, "s",
                    f"door {self.door} open for more than {self.policy.held_open_s:g} s"))
        if self._denied_active and now - self._denials[-1] > self.policy.denied_window_s:
            self._denied_active = False
            self._denials.clear()
            step.incidents.append(self._incident(
                "repeated_denied", AlarmState.CLEARED, now, self.policy.denied_severity, 0.0,
                float(self.policy.denied_burst), "", f"no denial at door {self.door} for "
                f"{self.policy.denied_window_s:g} s"))
        return step
