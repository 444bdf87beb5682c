"""Store what gateways answer to commands (``cmd/result``), once per event id, then hand each
result to whoever sent the command (the wiring names them: credential sync)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from gridsense_protocol import CommandResult as CommandResultMessage
from gridsense_protocol import utc_now

from ..counters import Counters
from ..db.models import CommandResult
from ..db.retry import retry_transient
from ..db.sequences import record_sequences
from ..logs import kv

log = logging.getLogger(__name__)


class CommandResultService:
    def __init__(self, factory: sessionmaker[Session], counters: Counters, *,
                 on_result: Callable[[CommandResultMessage], None] | None = None) -> None:
        self.factory = factory
        self.counters = counters
        self.on_result = on_result  # on the event loop, after the result is stored

    async def record(self, message: CommandResultMessage) -> bool:
        """True when stored, False for an event id already stored (a replay). A replay is
        handed on as well: the sender's reaction is idempotent, and it may have missed it."""
        stored = await retry_transient(lambda: self._record(message), self.counters,
                                       "command_results")
        self.counters.inc("command_results.stored" if stored else
                          "command_results.duplicate_events")
        log.info(kv("command_result" if stored else "command_result_duplicate",
                    gateway=message.gateway, event=message.id, command=message.command_id,
                    ok=message.ok))
        if self.on_result is not None:
            try:
                self.on_result(message)
            except Exception:  # the result is stored: the sender's trouble is not ingest's
                self.counters.inc("command_results.listener_errors")
                log.exception(kv("command_result_listener_failed", gateway=message.gateway,
                                 event=message.id))
        return stored

    def _record(self, message: CommandResultMessage) -> bool:
        try:
            with self.factory.begin() as session:
                redelivered = record_sequences(session, [(message.gateway, message.seq)])
                if any(redelivered.values()):
                    self.counters.inc("ingest.redelivered")
                seen = session.scalar(select(CommandResult.id).where(
                    CommandResult.event_id == message.id))
                if seen is not None:
                    return False
                session.add(CommandResult(
                    event_id=message.id, command_id=message.command_id, gateway=message.gateway,
                    seq=message.seq, ts=message.ts, ok=message.ok, result=message.result,
                    error=message.error, received_at=utc_now(),
                ))
            return True
        except IntegrityError:
            return False  # another server process stored the same event (and seq) just now
