"""Credential sync, gateway side: apply what the server sends, say which version we hold.

The server keeps one version per community and pushes changes as a ``cmd`` named
``access_sync`` the moment they happen (so a revocation reaches an online gateway within
seconds); the broker queues it in the gateway's persistent session while the gateway is away.
Its retained ``config`` names the current version, so a gateway that (re)connects learns at
once whether it is behind. Either way the gateway answers with a ``cmd/result`` carrying
``credentials_version``; a gateway that cannot apply a delta (its copy is not at the delta's
base) answers ``ok: false`` and the server sends a full snapshot.

    access_sync args: {"mode": "snapshot", "version": N, "secret": hex, "credentials": [...]}
                      {"mode": "delta", "base": B, "version": N, "credentials": [...],
                       "revoked": [id, ...]}
    config body:      {"access": {"credentials_version": N, "community": c}}
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gridsense_protocol import Command, ConfigUpdate

from ..logs import log_event
from .credentials import Credential, CredentialError, CredentialStore

log = logging.getLogger(__name__)

COMMAND = "access_sync"


@dataclass(frozen=True, slots=True)
class Reply:
    """What goes back on cmd/result, for the message ``command_id``."""

    command_id: str
    ok: bool
    result: dict[str, Any]
    error: str | None = None


class AccessSync:
    def __init__(self, store: Callable[[], CredentialStore | None]) -> None:
        self._store = store  # None: this gateway has no readers
        self.counters = dict.fromkeys(("snapshots", "deltas", "behind", "refused"), 0)

    def wants(self, message: Command | ConfigUpdate) -> bool:
        if isinstance(message, Command):
            return message.name == COMMAND
        return isinstance(message.body.get("access"), dict)

    def handle(self, message: Command | ConfigUpdate) -> Reply | None:
        store = self._store()
        if store is None:
            return Reply(message.id, False, {}, "this gateway has no access readers")
        if isinstance(message, ConfigUpdate):
            wanted = message.body["access"].get("credentials_version")
            if wanted == store.version:
                return None  # up to date: nothing to say
            log_event(log, "credentials_behind", have=store.version, server=wanted)
            self.counters["behind"] += 1
            return Reply(message.id, True, {"credentials_version": store.version,
                                            "sync": "needed"})
        try:
            return self._apply(message, store)
        except (CredentialError, KeyError, TypeError, ValueError) as exc:
            self.counters["refused"] += 1
            log_event(log, "credentials_sync_refused", logging.ERROR, command=message.id,
                      error=str(exc)[:300])
            return Reply(message.id, False, {"credentials_version": store.version},
                         f"refused: {str(exc)[:500]}")

    def _apply(self, message: Command, store: CredentialStore) -> Reply:
        args = message.args
        mode = args.get("mode")
        version = int(args["version"])
        items = [Credential.from_wire(c) for c in args.get("credentials", [])]
        if mode == "snapshot":
            count = store.apply_snapshot(version, bytes.fromhex(args["secret"]), items)
            self.counters["snapshots"] += 1
            log_event(log, "credentials_snapshot", command=message.id, version=version,
                      credentials=count)
            return Reply(message.id, True, {"credentials_version": version})
        if mode != "delta":
            raise ValueError(f"unknown mode {mode!r} (snapshot, delta)")
        base = int(args["base"])
        revoked = [str(i) for i in args.get("revoked", [])]
        if not store.apply_delta(base, version, items, revoked):
            self.counters["behind"] += 1
            log_event(log, "credentials_delta_gap", logging.WARNING, command=message.id,
                      have=store.version, base=base, version=version)
            return Reply(message.id, False, {"credentials_version": store.version},
                         f"copy is at version {store.version}, delta starts at {base}")
        self.counters["deltas"] += 1
        log_event(log, "credentials_delta", command=message.id, base=base, version=version,
                  upserts=len(items), revoked=len(revoked))
        return Reply(message.id, True, {"credentials_version": store.version})
