"""One reader on an OSDP line, as the control panel sees it."""

from __future__ import annotations

from dataclasses import dataclass, field

from .config import OsdpReaderConfig
from .door import DoorStateMachine
from .line import Keypad, ReaderProfile


@dataclass
class Reader:
    config: OsdpReaderConfig
    profile: ReaderProfile
    key: bytes
    door: DoorStateMachine
    keypad: Keypad = field(default_factory=Keypad)
    online: bool = False
    sc: bool = False
    seen_online: bool = False
    recover_attempt: int = 0
    recover_at: float = 0.0
    power_fault: bool = False

    def describe(self) -> str:
        """Its line in the health report."""
        state = "online" if self.online else "offline"
        if self.online and not self.sc:
            state = "online_no_secure_channel"
        if self.door.tampered:
            state += ",tamper"
        if self.power_fault:
            state += ",power_fault"
        return f"{state},door={self.door.state}"
