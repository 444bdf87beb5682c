"""The downlink side of remote configuration: the ``gateway_config`` section of the retained
``config`` message, and the parts of a document too large for one message (``cmd``)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from gridsense_protocol import Command, ConfigUpdate
from gridsense_protocol.gateway_config import (
    MAX_DOCUMENT_BYTES,
    PART_COMMAND,
    PARTS_RESULT,
    SECTION,
)

from ..drivers.base import CommandReply
from ..logs import log_event
from .applier import ConfigApplier, Pushed

log = logging.getLogger(__name__)

MAX_ASKED = 200  # parts asked for in one answer; the rest are asked for next time


@dataclass
class _Transfer:
    version: int
    hash: str
    parts: int
    texts: dict[int, str] = field(default_factory=dict)
    size: int = 0
    command_id: str | None = None  # the config message announcing it, once seen


class RemoteConfigHandler:
    def __init__(self, applier: ConfigApplier) -> None:
        self._applier = applier
        self._transfer: _Transfer | None = None  # one at a time: a newer version replaces it

    def wants(self, message: Command | ConfigUpdate) -> bool:
        if isinstance(message, Command):
            return message.name == PART_COMMAND
        return isinstance(message.body.get(SECTION), dict)

    def handle(self, message: Command | ConfigUpdate) -> CommandReply | None:
        try:
            if isinstance(message, ConfigUpdate):
                return self._announced(message, message.body[SECTION])
            return self._part(message)
        except (KeyError, TypeError, ValueError) as exc:
            log_event(log, "remote_config_malformed", logging.WARNING, event_id=message.id,
                      error=str(exc)[:300])
            return CommandReply(message.id, False, {}, f"malformed {SECTION}: {exc}"[:900])

    def _announced(self, message: ConfigUpdate, section: dict[str, Any]) -> CommandReply | None:
        version, digest = int(section["version"]), str(section["hash"])
        document = section.get("document")
        if isinstance(document, dict):
            self._applier.offer(Pushed(message.id, version, digest, document))
            return None
        if not self._applier.wants(version):
            return None
        transfer = self._track(version, digest, int(section["parts"]))
        if transfer.version != version:
            return None  # a newer version is already on its way
        transfer.command_id = message.id
        reply = self._complete(transfer)
        if transfer is self._transfer and len(transfer.texts) < transfer.parts:
            # Parts published while we had no session are gone: ask for what is missing.
            missing = [i for i in range(transfer.parts) if i not in transfer.texts]
            log_event(log, "remote_config_parts_missing", version=version,
                      missing=len(missing))
            return CommandReply(message.id, True, {PARTS_RESULT: {
                "version": version, "hash": digest, "missing": missing[:MAX_ASKED]}})
        return reply

    def _part(self, command: Command) -> CommandReply | None:
        args = command.args
        transfer = self._track(int(args["version"]), str(args["hash"]), int(args["parts"]))
        if transfer.version != int(args["version"]):
            return None  # a late part of a version already superseded
        index, text = int(args["part"]), str(args["text"])
        if not 0 <= index < transfer.parts:
            raise ValueError(f"part {index} of {transfer.parts}")
        if index not in transfer.texts:
            transfer.size += len(text)
            if transfer.size > MAX_DOCUMENT_BYTES:
                self._transfer = None
                raise ValueError(f"document over {MAX_DOCUMENT_BYTES} bytes")
            transfer.texts[index] = text
        return self._complete(transfer)

    def _track(self, version: int, digest: str, parts: int) -> _Transfer:
        current = self._transfer
        if current is not None and current.version > version:
            return current
        if current is None or (current.version, current.hash) != (version, digest):
            if not 1 <= parts <= MAX_DOCUMENT_BYTES // 1024:
                raise ValueError(f"parts {parts} out of range")
            current = self._transfer = _Transfer(version, digest, parts)
        return current

    def _complete(self, transfer: _Transfer) -> CommandReply | None:
        if transfer.command_id is None or len(transfer.texts) < transfer.parts:
            return None
        text = "".join(transfer.texts[i] for i in range(transfer.parts))
        self._transfer = None
        document = json.loads(text)
        if not isinstance(document, dict):
            raise ValueError("the document is not an object")
        self._applier.offer(Pushed(transfer.command_id, transfer.version, transfer.hash,
                                   document))
        return None
