"""Publish desired versions that are not yet out, on each gateway's retained ``config``
topic (in parts on ``cmd`` when too large), and keep what the gateways report back.

Versions are written by the API and the CLI (which may run without the server); this
process notices them within ``POLL_S`` (at once when the API wakes it).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from gridsense_protocol import Command, CommandResult, encode, topic_for, utc_now
from gridsense_protocol.gateway_config import (
    PART_BUDGET,
    PART_COMMAND,
    PARTS_RESULT,
    SECTION,
    split_document,
)

from ..audit import SYSTEM, record, record_now
from ..counters import Counters
from ..db.remote_config_models import GatewayConfigState
from ..logs import kv
from ..retained_config import Publisher, publish_section
from ..tasks import cancel_and_wait
from .versions import get_version, record_apply

log = logging.getLogger(__name__)

POLL_S = 2.0
INLINE_MAX = PART_BUDGET // 2  # the retained message also carries the other sections


class ConfigPusher:
    def __init__(self, factory: sessionmaker[Session], counters: Counters,
                 publisher: Publisher, poll_s: float = POLL_S) -> None:
        self.factory = factory
        self.counters = counters
        self.publisher = publisher
        self.poll_s = poll_s
        self._seq = itertools.count(int(time.time() * 1000))
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._keeping: set[asyncio.Future[None]] = set()  # held so none is collected midway

    async def start(self, *, poll: bool = True) -> None:
        """``poll=False``: the pushing loop (``run``) is run by whoever leads it among several
        server processes (a version written through another one is pushed within ``poll_s``)."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        if poll:
            self._task = asyncio.create_task(self.run(), name="config-push")

    async def stop(self) -> None:
        await cancel_and_wait((self._task,))

    def wake(self) -> None:
        """Thread-safe: a version was written; push now rather than at the next poll."""
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(wake.set)

    async def run(self) -> None:
        assert self._wake is not None
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_s)
            self._wake.clear()
            try:
                await asyncio.to_thread(self.push_due)
            except Exception:
                self.counters.inc("config_push.errors")
                log.exception(kv("config_push_failed"))

    def push_due(self) -> list[str]:
        """Push every desired version not yet published; the gateways pushed."""
        with self.factory() as session:
            due = [(s.gateway, s.desired_version) for s in session.scalars(
                select(GatewayConfigState).where(
                    GatewayConfigState.desired_version > GatewayConfigState.pushed_version))]
        pushed = []
        for gateway, version in due:
            try:
                self._push(gateway, version)
                pushed.append(gateway)
            except ConnectionError as exc:  # MQTT down: the next poll tries again
                self.counters.inc("config_push.not_published")
                log.warning(kv("config_push_waiting", gateway=gateway, version=version,
                               error=str(exc)))
            except ValueError as exc:  # a version no message can carry: never retried
                self.counters.inc("config_push.unsendable")
                log.error(kv("config_push_unsendable", gateway=gateway, version=version,
                             error=str(exc)[:300]))
                self._give_up(gateway, version, str(exc))
        return pushed

    def _push(self, gateway: str, version: int) -> None:
        with self.factory() as session:
            row = get_version(session, gateway, version)
            document, digest = row.document, row.hash
        texts = split_document(document)
        section: dict[str, Any] = {"version": version, "hash": digest}
        if len(texts) == 1 and len(texts[0].encode()) <= INLINE_MAX:
            section["document"] = document
        else:
            self._publish_parts(gateway, version, digest, texts, range(len(texts)))
            section["parts"] = len(texts)
        message = publish_section(self.factory, self.publisher, gateway, SECTION, section,
                                  version)
        with self.factory.begin() as session:
            state = session.get(GatewayConfigState, gateway)
            if state is not None and state.pushed_version < version:
                state.pushed_version, state.pushed_at = version, utc_now()
            record(session, SYSTEM, "config.push", gateway,
                   {"version": version, "hash": digest, "parts": len(texts),
                    "message": message.id})
        self.counters.inc("config_push.pushed")
        log.info(kv("config_pushed", gateway=gateway, version=version, hash=digest[:12],
                    parts=len(texts), message=message.id))

    def _give_up(self, gateway: str, version: int, why: str) -> None:
        with self.factory.begin() as session:
            state = session.get(GatewayConfigState, gateway)
            if state is not None and state.pushed_version < version:
                state.pushed_version = version
            record(session, SYSTEM, "config.unsendable", gateway,
                   {"version": version, "error": why[:500]})

    def _publish_parts(self, gateway: str, version: int, digest: str, texts: list[str],
                       wanted: Iterable[int]) -> None:
        for index in wanted:
            command = Command(gateway=gateway, seq=next(self._seq), ts=utc_now(),
                              name=PART_COMMAND,
                              args={"version": version, "hash": digest, "part": index,
                                    "parts": len(texts), "text": texts[index]})
            if not self.publisher.publish(topic_for(gateway, command.kind), encode(command)):
                raise ConnectionError(f"part {index} for {gateway} not published")

    def _resend(self, gateway: str, asked: dict[str, Any]) -> None:
        """Parts a gateway misses (published while it had no session), rebuilt alone: the
        split is deterministic. Only for the version it is still meant to run."""
        with self.factory() as session:
            state = session.get(GatewayConfigState, gateway)
            if state is None or asked.get("version") != state.desired_version:
                return
            row = get_version(session, gateway, state.desired_version)
            document, digest, version = row.document, row.hash, row.version
        texts = split_document(document)
        wanted = [i for i in asked.get("missing", []) if isinstance(i, int)
                  and 0 <= i < len(texts)]
        self._publish_parts(gateway, version, digest, texts, wanted)
        self.counters.inc("config_push.parts_resent", len(wanted))
        log.info(kv("config_parts_resent", gateway=gateway, version=version, parts=len(wanted)))

    # ---- results (from ingest, on the event loop) ----

    def result_received(self, message: CommandResult) -> None:
        result = message.result or {}
        report, asked = result.get(SECTION), result.get(PARTS_RESULT)
        if self._loop is None:
            return
        if isinstance(report, dict):
            self._background(self._keep, message, report)
        if isinstance(asked, dict):
            self._background(self._resend, message.gateway, asked)

    def _background(self, work: Callable[..., None], *args: Any) -> None:
        task = asyncio.ensure_future(asyncio.to_thread(self._guarded, work, *args))
        self._keeping.add(task)
        task.add_done_callback(self._keeping.discard)

    def _guarded(self, work: Callable[..., None], *args: Any) -> None:
        try:
            work(*args)
        except Exception:
            self.counters.inc("config_push.errors")
            log.exception(kv("config_result_failed", work=work.__name__))

    def _keep(self, message: CommandResult, report: dict[str, Any]) -> None:
        with self.factory.begin() as session:
            row = record_apply(session, message.gateway, message.id, report)
        if row is None:
            return
        record_now(self.factory, message.gateway, f"config.{row.state}", message.gateway,
                   {"version": row.version, "hash": row.hash, "reason": row.reason,
                    "running_hash": row.running_hash})
        self.counters.inc(f"config_push.{row.state}")
        log.info(kv("config_apply_reported", gateway=message.gateway, version=row.version,
                    state=row.state, reason=row.reason))
