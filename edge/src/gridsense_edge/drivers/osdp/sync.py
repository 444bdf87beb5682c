"""Credential sync, gateway side: apply what the server sends, say which version we hold."""

from __future__ import annotations

import logging
from typing import Any

from gridsense_protocol import Command, ConfigUpdate

from ...logs import log_event
from ..base import CommandReply
from .credentials import Credential, CredentialError, CredentialStore
from .passbook import PassUpdate
from .staging import Transfer

log = logging.getLogger(__name__)

COMMAND = "access_sync"


class AccessSync:
    def __init__(self, store: CredentialStore) -> None:
        self._store = store
        self.counters = dict.fromkeys(("snapshots", "deltas", "behind", "refused", "parts",
                                       "parts_stale"), 0)

    def wants(self, message: Command | ConfigUpdate) -> bool:
        if isinstance(message, Command):
            return message.name == COMMAND
        return isinstance(message.body.get("access"), dict)

    def handle(self, message: Command | ConfigUpdate) -> CommandReply | None:
        store = self._store
        if isinstance(message, ConfigUpdate):
            wanted = message.body["access"].get("credentials_version")
            if wanted == store.version:
                return None  # up to date: nothing to say
            progress = store.staging.progress()
            log_event(log, "credentials_behind", have=store.version, server=wanted,
                      staged=None if progress is None else progress.transfer.version,
                      missing=None if progress is None else len(progress.missing))
            self.counters["behind"] += 1
            result: dict[str, Any] = {"credentials_version": store.version, "sync": "needed"}
            if progress is not None:
                result["transfer"] = progress.as_result()
            return CommandReply(message.id, True, result)
        try:
            return self._apply(message, store)
        except (CredentialError, KeyError, TypeError, ValueError) as exc:
            self.counters["refused"] += 1
            log_event(log, "credentials_sync_refused", logging.ERROR, command=message.id,
                      error=str(exc)[:300])
            return CommandReply(message.id, False, {"credentials_version": store.version},
                         f"refused: {str(exc)[:500]}")

    def _apply(self, message: Command, store: CredentialStore) -> CommandReply:
        args = message.args
        mode = args.get("mode")
        version = int(args["version"])
        items = [Credential.from_wire(c) for c in args.get("credentials", [])]
        passes = PassUpdate.from_args(args)
        if int(args.get("parts", 1)) > 1:
            return self._apply_part(message, store, items, passes)
        staged = store.staging.current()
        if staged is not None and staged.version <= version:
            store.staging.discard()  # this one message supersedes an unfinished transfer
        if mode == "snapshot":
            count = store.apply_snapshot(version, bytes.fromhex(args["secret"]), items, passes)
            self.counters["snapshots"] += 1
            log_event(log, "credentials_snapshot", command=message.id, version=version,
                      credentials=count, passes=len(passes.records),
                      revoked_passes=len(passes.revoked), pass_keys=_key_count(passes))
            return CommandReply(message.id, True, {"credentials_version": version})
        if mode != "delta":
            raise ValueError(f"unknown mode {mode!r} (snapshot, delta)")
        base = int(args["base"])
        revoked = [str(i) for i in args.get("revoked", [])]
        if not store.apply_delta(base, version, items, revoked, passes):
            self.counters["behind"] += 1
            log_event(log, "credentials_delta_gap", logging.WARNING, command=message.id,
                      have=store.version, base=base, version=version)
            return CommandReply(message.id, False, {"credentials_version": store.version},
                         f"copy is at version {store.version}, delta starts at {base}")
        self.counters["deltas"] += 1
        log_event(log, "credentials_delta", command=message.id, base=base, version=version,
                  upserts=len(items), revoked=len(revoked), passes=len(passes.records),
                  revoked_passes=len(passes.revoked), pass_keys=_key_count(passes))
        return CommandReply(message.id, True, {"credentials_version": store.version})

    def _apply_part(self, message: Command, store: CredentialStore,
                    items: list[Credential], passes: PassUpdate) -> CommandReply:
        args = message.args
        mode = args.get("mode")
        if mode not in ("snapshot", "delta"):
            raise ValueError(f"unknown mode {mode!r} (snapshot, delta)")
        secret = bytes.fromhex(args["secret"]).hex() if mode == "snapshot" else None
        transfer = Transfer(str(mode), int(args["base"]) if mode == "delta" else 0,
                            int(args["version"]), int(args["parts"]), secret)
        part = int(args["part"])
        revoked = [str(i) for i in args.get("revoked", [])]
        progress = store.staging.add(transfer, part, items, revoked, passes)
        self.counters["parts"] += 1
        if progress is None:  # a late part of a transfer already superseded
            self.counters["parts_stale"] += 1
            log_event(log, "credentials_part_stale", command=message.id, part=part,
                      version=transfer.version)
            return CommandReply(message.id, True, {"credentials_version": store.version})
        log_event(log, "credentials_part", command=message.id, mode=transfer.mode,
                  version=transfer.version, part=part, parts=transfer.parts, have=progress.have)
        if progress.missing:
            result: dict[str, Any] = {"credentials_version": store.version,
                                      "transfer": progress.as_result()}
            if part == transfer.parts - 1:
                # Parts come in order on one topic: the last one in with gaps means a loss.
                result["sync"] = "needed"
                log_event(log, "credentials_parts_missing", logging.WARNING,
                          command=message.id, version=transfer.version,
                          missing=len(progress.missing))
            return CommandReply(message.id, True, result)
        count = store.staging.staged_count()
        if not store.apply_staged(transfer):
            self.counters["behind"] += 1
            log_event(log, "credentials_delta_gap", logging.WARNING, command=message.id,
                      have=store.version, base=transfer.base, version=transfer.version)
            return CommandReply(message.id, False, {"credentials_version": store.version},
                         f"copy is at version {store.version}, delta starts at "
                         f"{transfer.base}")
        name = "snapshots" if transfer.mode == "snapshot" else "deltas"
        self.counters[name] += 1
        log_event(log, f"credentials_{transfer.mode}", command=message.id,
                  version=transfer.version, credentials=count, parts=transfer.parts)
        return CommandReply(message.id, True, {"credentials_version": store.version})


def _key_count(passes: PassUpdate) -> int | None:
    """Keys a message carried (None: it kept the gateway's)."""
    return None if passes.keys is None else sum(len(k) for k in passes.keys.values())
