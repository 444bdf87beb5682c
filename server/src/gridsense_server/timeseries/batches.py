"""A sealed batch of line-protocol lines and the inbound messages whose readings it carries.

A batch becomes durable once — written to InfluxDB or synced to the disk spool, whichever
comes first — and only then are its messages told (which lets their acks go out). A
message's readings are never split across batches, so one batch settles a whole message.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from ..acks import INFLUX_LINES, InboundMessage
from .spool import SpoolKey


@dataclass(eq=False, slots=True)
class Batch:
    lines: list[str]
    messages: list[InboundMessage] = field(default_factory=list)
    # Each add's message (None: lines of no message) and how many lines it added, in order:
    # which lines are whose, should InfluxDB refuse the batch.
    parts: list[tuple[InboundMessage | None, int]] = field(default_factory=list)
    sealed_at: float = field(default_factory=time.monotonic)
    spool_key: SpoolKey | None = None  # set once the batch is in the disk spool
    durable: bool = False
    _body: bytes | None = None

    def body(self) -> bytes:
        if self._body is None:
            self._body = ("\n".join(self.lines) + "\n").encode()
        return self._body

    def make_durable(self) -> None:
        """Tell the messages (once) that these readings are safe."""
        if self.durable:
            return
        self.durable = True
        messages, self.messages = self.messages, []
        for message in messages:
            message.done(INFLUX_LINES)

    def split(self) -> list[tuple[InboundMessage, bytes, int]]:
        """Each message with its own lines as a body."""
        result: list[tuple[InboundMessage, bytes, int]] = []
        offset = 0
        for message, count in self.parts:
            if message is not None and count:
                lines = self.lines[offset:offset + count]
                result.append((message, ("\n".join(lines) + "\n").encode(), count))
            offset += count
        return result

    def __len__(self) -> int:
        return len(self.lines)
