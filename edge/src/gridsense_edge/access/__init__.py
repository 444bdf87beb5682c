"""Access control at the edge: the local credential copy, grant/deny decisions, door states.

Everything here is pure or local (SQLite): a door keeps working while the uplink is down. The
OSDP driver (drivers/osdp_reader.py) feeds it what the readers report and acts on its answers.
"""

from .credentials import Credential, CredentialStore, card_hash, pin_hash
from .decisions import Decision, decide
from .door import DoorEvent, DoorPolicy, DoorStateMachine

__all__ = [
    "Credential", "CredentialStore", "Decision", "DoorEvent", "DoorPolicy", "DoorStateMachine",
    "card_hash", "decide", "pin_hash",
]
