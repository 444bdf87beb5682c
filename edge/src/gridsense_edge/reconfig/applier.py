"""Apply a pushed configuration: validate, change only what changed, prove it healthy within
the window, else return to the last good one by ourselves and say why.

The gateway reports every outcome on ``cmd/result`` (answering the ``config`` message), and a
version it rolled back or refused is never applied again: the retained topic hands the same
version over at every reconnect, and a loop of apply-fail-rollback would follow.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from gridsense_protocol.gateway_config import SECTION, ApplyState, config_hash
from gridsense_protocol.yamlconfig import ConfigError, validate_yaml

from ..config import GatewayConfig
from ..configtypes import BASE_DIR
from ..drivers.base import CommandReply
from ..logs import log_event
from .plan import ChangePlan, forbidden_change, plan_change
from .store import GoodConfig, RemoteConfigStore

log = logging.getLogger(__name__)

WINDOW_POLL_S = 0.5


@dataclass(frozen=True, slots=True)
class Pushed:
    """One version as the server sent it (``command_id``: the config message to answer)."""

    command_id: str
    version: int
    hash: str
    document: dict[str, Any]


class Runtime(Protocol):
    """The running agent, as the applier sees it."""

    config: GatewayConfig

    async def reconfigure(self, new: GatewayConfig, plan: ChangePlan) -> None:
        """Switch to ``new``, restarting only what ``plan`` names."""

    async def probe_broker(self, new: GatewayConfig) -> str | None:
        """None when the broker of ``new`` accepts this gateway, else what went wrong."""

    def published(self) -> int: ...

    def health_problems(self, driver_types: frozenset[str], published_before: int) -> list[str]:
        """What keeps the running config from being called healthy right now (empty: none)."""

    def reply(self, reply: CommandReply) -> None: ...


def validate_document(document: dict[str, Any], label: str, base_dir: Path | None,
                      source: Path | None = None) -> GatewayConfig:
    """The gateway's own validation of a document (raises ConfigError naming the key path)."""
    context: dict[str, Any] = {} if base_dir is None else {BASE_DIR: base_dir}
    config = validate_yaml(json.dumps(document), label, GatewayConfig, context)
    config._source = source
    return config


class ConfigApplier:
    def __init__(self, runtime: Runtime, store: RemoteConfigStore, running_hash: str) -> None:
        self._runtime = runtime
        self._store = store
        source = runtime.config.source
        self._base_dir = source.absolute().parent if source is not None else None
        good = store.good()
        self.running_version = good.version if good is not None else 0
        self.running_hash = good.hash if good is not None else running_hash
        self._busy = False
        self._next: Pushed | None = None
        self.counters = dict.fromkeys(("applied", "rolled_back", "refused", "skipped"), 0)

    def saved(self) -> GatewayConfig | None:
        """The last good remote version, to run instead of the local file after a restart."""
        good = self._store.good()
        if good is None:
            return None
        try:
            return validate_document(good.document, f"saved remote config v{good.version}",
                                     self._base_dir, self._runtime.config.source)
        except ConfigError as exc:  # the local file still works: run that and say so
            log_event(log, "remote_config_saved_invalid", logging.ERROR, error=str(exc)[:500])
            self.running_version, self.running_hash = 0, self.running_hash
            return None

    def wants(self, version: int) -> bool:
        """False for what we run or older (the retained message again after a reconnect)
        and for a version rolled back or refused before."""
        if version <= self.running_version:
            return False
        if version in self._store.refused():
            self.counters["skipped"] += 1
            log_event(log, "remote_config_skipped", version=version,
                      reason="rolled back or refused before")
            return False
        return True

    def offer(self, pushed: Pushed) -> None:
        """On the event loop: a version arrived (complete). Applied in the background."""
        if not self.wants(pushed.version):
            return
        if self._busy:
            self._next = pushed  # the newest wins; an older one waiting is dropped
            return
        self._busy = True
        asyncio.get_running_loop().create_task(self._run(pushed), name="remote config")

    async def _run(self, pushed: Pushed) -> None:
        try:
            while True:
                await self._apply(pushed)
                waiting, self._next = self._next, None
                if waiting is None or waiting.version <= self.running_version:
                    return
                pushed = waiting
        finally:
            self._busy = False

    async def _apply(self, pushed: Pushed) -> None:
        old = self._runtime.config
        if config_hash(pushed.document) != pushed.hash:
            self._finish(pushed, ApplyState.REFUSED, "the document does not match its hash")
            return
        try:
            new = validate_document(pushed.document, f"remote config v{pushed.version}",
                                    self._base_dir, old.source)
        except ConfigError as exc:
            self._finish(pushed, ApplyState.REFUSED, str(exc))
            return
        problem = forbidden_change(old, new)
        if problem is not None:
            self._finish(pushed, ApplyState.REFUSED, problem)
            return
        plan = plan_change(old, new)
        log_event(log, "remote_config_applying", version=pushed.version, hash=pushed.hash[:12],
                  drivers=",".join(sorted(plan.driver_types)), rules=plan.rules,
                  uplink=plan.uplink)
        if plan.broker_moves:
            # The running connection stays until the new broker has accepted us once.
            problem = await self._runtime.probe_broker(new)
            if problem is not None:
                self._finish(pushed, ApplyState.ROLLED_BACK, f"new broker: {problem}")
                return
        before = self._runtime.published()
        try:
            await self._runtime.reconfigure(new, plan)
            problems = await self._window(new, plan, before)
        except Exception as exc:  # a driver that cannot start is a failed version, no crash
            log_event(log, "remote_config_apply_failed", logging.ERROR, exc_info=exc)
            problems = [f"apply failed: {exc!r}"]
        if problems:
            try:
                await self._runtime.reconfigure(old, plan_change(new, old))
            except Exception as exc:  # say so; the supervisor restarts what did not come back
                log_event(log, "remote_config_rollback_failed", logging.CRITICAL, exc_info=exc)
                problems.append(f"rollback incomplete: {exc!r}")
            self._finish(pushed, ApplyState.ROLLED_BACK, "; ".join(problems)[:900])
            return
        self._store.save_good(GoodConfig(pushed.version, pushed.hash, pushed.document))
        self.running_version, self.running_hash = pushed.version, pushed.hash
        self._finish(pushed, ApplyState.APPLIED, None)

    async def _window(self, new: GatewayConfig, plan: ChangePlan, before: int) -> list[str]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + new.remote.health_window_s
        while True:
            problems = self._runtime.health_problems(plan.driver_types, before)
            if not problems or loop.time() >= deadline:
                return problems
            await asyncio.sleep(WINDOW_POLL_S)

    def _finish(self, pushed: Pushed, state: ApplyState, reason: str | None) -> None:
        self.counters[state.value] += 1
        if state is not ApplyState.APPLIED:
            self._store.add_refused(pushed.version)
        log_event(log, f"remote_config_{state.value}",
                  logging.INFO if state is ApplyState.APPLIED else logging.WARNING,
                  version=pushed.version, hash=pushed.hash[:12],
                  running_hash=self.running_hash[:12], reason=reason and reason[:300])
        result = {SECTION: {"version": pushed.version, "hash": pushed.hash,
                            "state": state.value, "running_version": self.running_version,
                            "running_hash": self.running_hash, "reason": reason}}
        self._runtime.reply(CommandReply(pushed.command_id, state is ApplyState.APPLIED,
                                         result, None if reason is None else reason[:900]))
