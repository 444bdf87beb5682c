"""The ``lifecycle:`` section of server.yaml: SLA clocks, escalation policies, channels.

A policy is data: ordered steps (an offset from the moment the incident started waiting for
acceptance, whom to page — a role relative to the point's grid — and on which channels),
repeated ``repeat`` more times every ``repeat_every_s`` while nobody accepts; after acceptance
a reminder to the handler when they go quiet, and un-accept plus re-escalation when they stay
quiet. The first policy whose ``types``/``severities`` match an incident applies.
"""

from __future__ import annotations

from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Target = Literal["workers", "leader", "duty_officer", "command_centre", "control"]
Severity = Literal["minor", "major", "critical"]
Seconds = Annotated[float, Field(ge=0)]
# "app" is the WebSocket stream; "group:<name>" a grid's group robot; any other name one of
# the person's own contacts (registry staff ``contacts:``).
ChannelName = Annotated[str, Field(pattern=r"^(app|group:[a-z0-9_]{1,24}|[a-z0-9_]{1,24})$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StepSpec(_Strict):
    after_s: Seconds
    notify: Annotated[list[Target], Field(min_length=1)]
    channels: Annotated[list[ChannelName], Field(min_length=1)] = ["app"]


class PolicySpec(_Strict):
    types: list[str] = []  # empty: every type
    severities: list[Severity] = []  # empty: every severity
    steps: Annotated[list[StepSpec], Field(min_length=1)]
    repeat: Annotated[int, Field(ge=0, le=100)] = 0
    repeat_every_s: Annotated[float, Field(gt=0)] = 900
    # After acceptance: remind the handler after this long without activity, and un-accept
    # (back to new, escalated again) after this long. None: never.
    remind_after_s: Annotated[float, Field(gt=0)] | None = 3600
    unaccept_after_s: Annotated[float, Field(gt=0)] | None = 7200
    quiet_channels: Annotated[list[ChannelName], Field(min_length=1)] = ["app"]

    @model_validator(mode="after")
    def _ordered(self) -> PolicySpec:
        offsets = [step.after_s for step in self.steps]
        if offsets != sorted(offsets):
            raise ValueError("steps must be in order of after_s")
        if self.repeat and self.repeat_every_s <= offsets[-1]:
            raise ValueError("repeat_every_s must be longer than the last step's after_s")
        return self

    def matches(self, type_: str, severity: str) -> bool:
        return ((not self.types or type_ in self.types)
                and (not self.severities or severity in self.severities))


class SlaRule(_Strict):
    types: list[str] = []
    severities: list[Severity] = []
    accept_s: Annotated[float, Field(gt=0)] | None = None
    resolve_s: Annotated[float, Field(gt=0)] | None = None


class SlaSpec(_Strict):
    accept_s: Annotated[float, Field(gt=0)] = 300  # acceptance within 5 minutes
    resolve_s: Annotated[float, Field(gt=0)] = 3 * 3600  # done within about 3 hours
    rules: list[SlaRule] = []  # first match overrides the defaults, per field

    def deadlines(self, type_: str, severity: str) -> tuple[float, float]:
        accept, resolve = self.accept_s, self.resolve_s
        for rule in self.rules:
            if ((not rule.types or type_ in rule.types)
                    and (not rule.severities or severity in rule.severities)):
                accept = rule.accept_s or accept
                resolve = rule.resolve_s or resolve
                break
        return accept, resolve


class ChannelSpec(_Strict):
    rate_per_min: Annotated[int, Field(ge=1, le=10_000)] = 20  # group robots: ~20/min
    max_attempts: Annotated[int, Field(ge=1, le=50)] = 5
    # More messages than this to one target at once go as singles plus one grouped digest.
    group_over: Annotated[int, Field(ge=1, le=1000)] = 5


class AutoResolveSpec(_Strict):
    """Self-clearing types closed by the system once their alarm has been cleared this long;
    never a critical incident (that waits for a person)."""

    types: list[str] = ["gateway_offline"]
    quiet_s: Annotated[float, Field(gt=0)] = 1800


DEFAULT_POLICIES = {
    "default": PolicySpec(steps=[
        StepSpec(after_s=0, notify=["workers"]),
        StepSpec(after_s=300, notify=["leader"]),
        StepSpec(after_s=900, notify=["duty_officer"]),
        StepSpec(after_s=1800, notify=["command_centre"]),
    ]),
}


class LifecycleConfig(_Strict):
    timezone: str = "Asia/Shanghai"  # rosters' HH:MM are local times
    public_url: Annotated[str, Field(pattern=r"^https?://")] = "http://127.0.0.1:8080"
    link_ttl_s: Annotated[int, Field(ge=60)] = 7 * 86400
    tick_s: Annotated[float, Field(gt=0, le=60)] = 1.0
    sla: SlaSpec = SlaSpec()
    policies: Annotated[dict[str, PolicySpec], Field(min_length=1)] = DEFAULT_POLICIES
    channels: dict[str, ChannelSpec] = {}  # per channel name; unnamed ones get the defaults
    auto_resolve: AutoResolveSpec = AutoResolveSpec()
    # Point-level types not paged while the point's gateway has an open gateway_offline.
    noise_under_gateway_offline: list[str] = ["point_offline", "sensor_offline", "stale"]

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @field_validator("public_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    def policy_for(self, type_: str, severity: str) -> tuple[str, PolicySpec]:
        for name, policy in self.policies.items():
            if policy.matches(type_, severity):
                return name, policy
        name = next(iter(self.policies))
        return name, self.policies[name]

    def channel(self, name: str) -> ChannelSpec:
        return self.channels.get(name.removeprefix("group:"), ChannelSpec())
