"""What a new configuration changes, so only the affected parts of the agent restart."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import GatewayConfig


@dataclass(frozen=True, slots=True)
class ChangePlan:
    driver_types: frozenset[str]  # driver groups to restart (their devices or buses changed)
    rules: bool
    uplink: bool  # the mqtt section: a new connection, tried before the old one is dropped
    broker_moves: bool  # host, port, login or TLS: the new broker is probed first
    other: bool  # health, outbox: read when next used

    @property
    def empty(self) -> bool:
        return not (self.driver_types or self.rules or self.uplink or self.other)


def forbidden_change(old: GatewayConfig, new: GatewayConfig) -> str | None:
    """Changes only a site visit may make: the identity and the state folder of the gateway."""
    if new.gateway.id != old.gateway.id:
        return f"gateway.id {new.gateway.id!r} is not this gateway ({old.gateway.id!r})"
    if new.gateway.state_dir != old.gateway.state_dir:
        return "gateway.state_dir cannot change remotely (the outbox lives there)"
    return None


def _devices_by_type(config: GatewayConfig) -> dict[str, list[object]]:
    out: dict[str, list[object]] = {}
    for device in config.devices:
        out.setdefault(device.type, []).append(device.model_dump(mode="json"))
    return out


def plan_change(old: GatewayConfig, new: GatewayConfig) -> ChangePlan:
    before, after = _devices_by_type(old), _devices_by_type(new)
    shared_changed = (old.buses != new.buses or old.profiles_folder != new.profiles_folder)
    types = {t for t in before.keys() | after.keys() if before.get(t) != after.get(t)}
    if shared_changed:  # drivers read buses and profiles: every group still running restarts
        types |= after.keys()
    moved = ("host", "port", "password_file", "tls")
    return ChangePlan(
        driver_types=frozenset(types),
        rules=old.rules != new.rules,
        uplink=old.mqtt != new.mqtt,
        broker_moves=any(getattr(old.mqtt, k) != getattr(new.mqtt, k) for k in moved),
        other=old.health != new.health or old.outbox != new.outbox
        or old.remote != new.remote,
    )
