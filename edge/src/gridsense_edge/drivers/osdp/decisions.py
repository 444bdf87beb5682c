"""Grant or deny, from the local credential copy only: the same answer online and offline."""

from __future__ import annotations

from dataclasses import dataclass

from .credentials import Credential, CredentialStore


@dataclass(frozen=True, slots=True)
class Decision:
    granted: bool
    reason: str | None  # None when granted; unknown, revoked, expired, not_yet_valid, ...
    credential: str | None
    hashed: str | None  # the card/PIN hash, what logs and events carry
    pass_id: str | None = None  # decided on an electronic pass (passdecide.py)


def _judge(
    credential: Credential | None, door: str, building: str | None, now: float
) -> str | None:
    if credential is None:
        return "unknown"
    if credential.revoked:
        return "revoked"
    if credential.valid_from is not None and now < credential.valid_from:
        return "not_yet_valid"
    if credential.valid_until is not None and now >= credential.valid_until:
        return "expired"
    if not credential.allows(door, building):
        return "door_not_allowed"
    return None


def decide(
    store: CredentialStore, *, door: str, building: str | None, now: float,
    card: str | None = None, pin: str | None = None,
) -> Decision:
    """``card`` is the number as read, ``pin`` as typed; neither leaves this function."""
    if card is not None:
        hashed = store.hash_card(card)
        credential = store.by_card(hashed) if hashed else None
    elif pin is not None:
        hashed = store.hash_pin(pin)
        credential = store.by_pin(hashed) if hashed else None
    else:
        raise ValueError("decide needs a card or a pin")
    if hashed is None:  # never synced: no site key, no credentials
        return Decision(False, "no_credentials", None, None)
    reason = _judge(credential, door, building, now)
    return Decision(reason is None, reason, credential.id if credential else None, hashed)
