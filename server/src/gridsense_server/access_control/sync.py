"""Credential sync, server side: push changes to a community's gateways the moment they happen,
as ``access_sync`` commands (deltas from each gateway's confirmed version, or snapshots) and a
retained ``config``; the gateways' ``cmd/result`` answers confirm or ask again. The whole story
is in docs/architecture.md (access control).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import time
from collections.abc import Callable
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from gridsense_protocol import (
    MAX_PAYLOAD_BYTES,
    Command,
    CommandResult,
    Envelope,
    encode,
    topic_for,
    utc_now,
)

from ..audit import SYSTEM, record_now
from ..counters import Counters
from ..db.access_models import AccessSite, GatewayCredentials
from ..logs import kv
from ..retained_config import publish_section
from ..tasks import cancel_and_wait
from . import credentials as creds
from .parts import split

log = logging.getLogger(__name__)

COMMAND = "access_sync"
MAX_PENDING = 1000  # communities/gateways waiting for a push (a bound; duplicates merge)
RESYNC_S = 15.0  # versions changed by someone else (CLI import, another server process)
STALL_S = 60.0  # a pushed version not confirmed by then: ask the gateway where it stands

Job = tuple[str, str, dict[str, Any] | None]  # (kind, gateway or community, details)


class Publisher(Protocol):
    """Where commands go out: the server's MQTT bridge (QoS 1, thread-safe)."""

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> bool: ...


class CredentialSync:
    def __init__(self, factory: sessionmaker[Session], counters: Counters,
                 publisher: Publisher) -> None:
        self.factory = factory
        self.counters = counters
        self.publisher = publisher
        self._pushed: dict[str, tuple[str, int, float]] = {}  # gateway -> community, version, t
        self._seq = itertools.count(int(time.time() * 1000))  # server->edge: increasing
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: asyncio.Queue[Job] | None = None
        self._task: asyncio.Task[None] | None = None
        self._watch: asyncio.Task[None] | None = None
        self._seen_versions: dict[str, int] | None = None  # community -> version last seen
        # Adds what else rides in the sync (electronic passes), in the same transaction.
        self.extend: Callable[[Session, creds.Changes], creds.Changes] | None = None

    # ---- lifecycle ----

    async def start(self, *, watch: bool = True) -> None:
        """``watch=False``: the resync loop (``watch_versions``) is run by whoever leads it
        among several server processes."""
        self._loop = asyncio.get_running_loop()
        self._pending = asyncio.Queue(MAX_PENDING)
        self._task = asyncio.create_task(self._worker(), name="credential-sync")
        if watch:
            self._watch = asyncio.create_task(self.watch_versions(), name="credential-versions")

    async def stop(self) -> None:
        await cancel_and_wait((self._task, self._watch))

    # ---- triggers ----

    def changed(self, community: str) -> None:
        """Thread-safe: credentials of ``community`` changed; push to its gateways now."""
        self._enqueue("community", community)

    def confirmed(self, gateway: str) -> int:
        """The credentials version ``gateway`` last confirmed (0: never)."""
        with self.factory() as session:
            row = session.get(GatewayCredentials, gateway)
            return 0 if row is None else row.version

    def _enqueue(self, kind: str, key: str, details: dict[str, Any] | None = None) -> None:
        loop, pending = self._loop, self._pending
        if loop is None or pending is None:
            return

        def put() -> None:
            try:
                pending.put_nowait((kind, key, details))
            except asyncio.QueueFull:
                self.counters.inc("access_sync.dropped_triggers")

        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(put)

    async def _worker(self) -> None:
        assert self._pending is not None
        while True:
            kind, key, details = await self._pending.get()
            try:
                if kind == "community":
                    await asyncio.to_thread(self._push_community, key)
                elif kind == "confirm":
                    assert details is not None
                    await asyncio.to_thread(self._confirm, key, int(details["version"]))
                else:
                    await asyncio.to_thread(self._push_gateway, key, None, details)
            except Exception:
                self.counters.inc("access_sync.errors")
                log.exception(kv("access_sync_failed", kind=kind, key=key))

    async def watch_versions(self) -> None:
        while True:
            await asyncio.sleep(RESYNC_S)
            try:
                versions = await asyncio.to_thread(self._site_versions)
            except Exception:
                self.counters.inc("access_sync.errors")
                log.exception(kv("access_sync_versions_failed"))
                continue
            if self._seen_versions is not None:
                for community, version in versions.items():
                    if self._seen_versions.get(community) != version:
                        self.changed(community)
            else:
                await asyncio.to_thread(self._find_lagging, versions)
            self._seen_versions = versions
            await asyncio.to_thread(self._probe_stalled)

    def _find_lagging(self, versions: dict[str, int]) -> None:
        """After a start: gateways whose confirmed version is behind their community's are
        probed at once (their answer may have been lost while this process was down, and what
        was pushed before the restart is not in memory)."""
        with self.factory() as session:
            behind = [(gateway, community, version)
                      for community, version in versions.items()
                      for gateway in creds.gateways_of(session, community)]
        for gateway, community, version in behind:
            if self.confirmed(gateway) < version and gateway not in self._pushed:
                self._pushed[gateway] = (community, version, -STALL_S)

    def _probe_stalled(self) -> None:
        """Re-publish the retained config of a transfer nobody confirmed: the gateway answers
        with its version and any parts it misses (only the retained config, never the parts
        again, so a gateway that is offline does not pile up copies in its session)."""
        now = time.monotonic()
        for gateway, (community, version, at) in list(self._pushed.items()):
            if now - at < STALL_S:
                continue
            if self.confirmed(gateway) >= version:
                self._pushed.pop(gateway, None)
                continue
            self._pushed[gateway] = (community, version, now)
            self._publish_config(gateway, community, version)
            self.counters.inc("access_sync.probes")
            log.info(kv("access_sync_probe", gateway=gateway, community=community,
                        version=version))

    def _confirm(self, gateway: str, version: int) -> None:
        with self.factory.begin() as session:
            community = creds.community_of_gateway(session, gateway)
            row = session.get(GatewayCredentials, gateway)
            if row is None:
                row = GatewayCredentials(gateway=gateway)
                session.add(row)
            row.community_id, row.version, row.confirmed_at = community, version, utc_now()

    def _site_versions(self) -> dict[str, int]:
        with self.factory() as session:
            return {s.community_id: s.version for s in session.scalars(select(AccessSite))}

    # ---- pushing (worker threads) ----

    def _push_community(self, community: str) -> None:
        with self.factory() as session:
            gateways = creds.gateways_of(session, community)
        for gateway in gateways:
            self._push_gateway(gateway, community)

    def _push_gateway(self, gateway: str, community: str | None = None,
                      resume: dict[str, Any] | None = None) -> None:
        """Push what ``gateway`` misses; with ``resume`` (a transfer the gateway staged in
        part) only its missing parts, if that transfer is still what it would get now."""
        with self.factory.begin() as session:
            community = community or creds.community_of_gateway(session, gateway)
            if community is None:
                return
            row = session.get(GatewayCredentials, gateway)
            confirmed = row.version if row is not None and row.community_id == community else 0
            base = confirmed
            if resume is not None:
                base = int(resume.get("base", 0)) if resume.get("mode") == "delta" else 0
            changes = creds.changes_since(session, community, base)
            if self.extend is not None:
                changes = self.extend(session, changes)
        if changes.version == 0:
            return  # no credentials ever entered for this community
        if not changes.snapshot and changes.base == changes.version:
            return
        parts = split(changes)
        wanted = range(len(parts))
        if resume is not None:
            same = (resume.get("version") == changes.version
                    and resume.get("parts") == len(parts)
                    and resume.get("mode") == parts[0]["mode"])
            if not same:  # the community moved on: a fresh transfer from the confirmed version
                self._push_gateway(gateway, community)
                return
            wanted = [p for p in resume.get("missing", []) if isinstance(p, int)
                      and 0 <= p < len(parts)]
        payloads: list[tuple[Command, bytes]] = []
        for index in wanted:
            command = Command(gateway=gateway, seq=next(self._seq), ts=utc_now(),
                              name=COMMAND, args=parts[index])
            payload = encode(command)
            if len(payload) > MAX_PAYLOAD_BYTES:
                # Only a single absurd credential can do this: say so where someone can act.
                self.counters.inc("access_sync.too_large")
                log.error(kv("access_sync_too_large", gateway=gateway, community=community,
                             bytes=len(payload), limit=MAX_PAYLOAD_BYTES, part=index))
                return
            payloads.append((command, payload))
        for command, payload in payloads:
            self._publish(command, payload)
        self._publish_config(gateway, community, changes.version)
        self._pushed[gateway] = (community, changes.version, time.monotonic())
        if resume is None:  # a resend repeats a push already recorded
            record_now(self.factory, SYSTEM, "config.push", gateway,
                       {"community": community, "credentials_version": changes.version,
                        "mode": parts[0]["mode"], "parts": len(parts)})
        mode = parts[0]["mode"]
        self.counters.inc("access_sync.resends" if resume is not None
                          else "access_sync.snapshots" if changes.snapshot
                          else "access_sync.deltas")
        self.counters.inc("access_sync.parts", len(payloads))
        log.info(kv("access_sync_pushed", gateway=gateway, community=community,
                    command=payloads[0][0].id if payloads else None, mode=mode,
                    base=changes.base, version=changes.version, parts=len(parts),
                    sent=len(payloads), resend=resume is not None,
                    credentials=len(changes.upserts), revoked=len(changes.revoked)))

    def _publish_config(self, gateway: str, community: str, version: int) -> None:
        # The retained config also carries other wings' sections: publish_section keeps them.
        try:
            publish_section(self.factory, self.publisher, gateway, "access",
                            {"community": community, "credentials_version": version}, version)
        except ConnectionError:
            self.counters.inc("access_sync.not_published")

    def _publish(self, message: Envelope, payload: bytes, retain: bool = False) -> None:
        if not self.publisher.publish(topic_for(message.gateway, message.kind), payload,
                                      retain=retain):
            self.counters.inc("access_sync.not_published")

    # ---- results (from ingest, on the event loop) ----

    def result_received(self, message: CommandResult) -> None:
        """A gateway's answer, stored by ingest: note its version; resend what it asks for."""
        result = message.result or {}
        version = result.get("credentials_version")
        if not isinstance(version, int):
            return  # not an answer to credential sync
        self._enqueue("confirm", message.gateway, {"version": version})
        if not message.ok or result.get("sync") == "needed":
            transfer = result.get("transfer")
            resume = transfer if isinstance(transfer, dict) and transfer.get("missing") else None
            # jitter: a crowd of gateways reconnecting after a broker restart spreads out
            delay = random.uniform(0.0, 0.2)
            loop = self._loop
            if loop is not None:
                loop.call_later(delay, self._enqueue, "gateway", message.gateway, resume)
