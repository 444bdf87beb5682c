"""What the running server keeps for passes: where the signing keys are, the throttles for
sign-in codes and visitor links, and the background round that reconciles use counts across
gateways (opening ``pass_overuse`` incidents) and prunes ended resident sessions."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from ..auth.throttle import Throttle
from ..config import LifecycleConfig, ServerConfig
from ..counters import Counters
from ..live.hub import LiveHub
from ..logs import kv
from ..notify.channels import ChannelSet
from ..notify.channels.base import Outcome
from ..notify.messages import Message
from ..workorders.views import IncidentView
from . import keys, overuse, residents
from .keys import KEY_DIR

log = logging.getLogger(__name__)

RECONCILE_S = 30.0
CODE_SCOPE = "resident_code"
LINK_SCOPE = "visitor_link"


def key_dir(config: ServerConfig) -> Path:
    return config.state_dir / KEY_DIR


@dataclass
class PassService:
    factory: sessionmaker[Session]
    key_dir: Path
    lifecycle: LifecycleConfig
    public_url: str
    code_throttle: Throttle
    link_throttle: Throttle
    counters: Counters
    hub: LiveHub | None = None
    on_pages: Callable[[], None] | None = None
    channels: ChannelSet | None = None  # a resident's code sent through one of their channels

    @classmethod
    def of(cls, factory: sessionmaker[Session], config: ServerConfig, counters: Counters,
           hub: LiveHub | None = None) -> PassService:
        return cls(factory, key_dir(config), config.lifecycle,
                   config.lifecycle.public_url.rstrip("/"),
                   Throttle(factory, config.auth.throttle, CODE_SCOPE),
                   Throttle(factory, config.auth.throttle, LINK_SCOPE), counters, hub)

    def ensure_signing_key(self) -> int | None:
        """A first signing key when the deployment has none (the id made, or None): passes
        work from the first start; rotation is the CLI's (``passes rotate-key``)."""
        with self.factory.begin() as session:
            if keys.signing_key_count(session):
                return None
            key_id = keys.add_signing_key(session, self.key_dir)
        log.info(kv("pass_signing_key_created", key_id=key_id, dir=str(self.key_dir)))
        return key_id

    def send_code(self, target: str, holder: str, code: str, expires: str) -> Outcome:
        """Blocking (network): the code to a resident's own channel (mail, WeCom ...)."""
        if self.channels is None:
            raise LookupError("通知通道未配置 / no notification channels in this process")
        message = Message("【电子出入证】手机登录码 / your pass sign-in code", "info", (
            ("住户", holder), ("登录码", code), ("有效期至", expires),
            ("说明", "在手机上打开下面的链接并输入登录码；仅可使用一次，请勿转发")),
            link=f"{self.public_url}/#/r")
        return self.channels.send(target, message)

    def link(self, token: str) -> str:
        return f"{self.public_url}/#/v/{token}"  # a fragment: no proxy log holds it

    def reconcile(self) -> list[tuple[str | None, dict[str, Any]]]:
        """One round (blocking): open the incidents over-used passes call for, prune ended
        resident sessions; the opened incidents as (grid, incident view)."""
        opened = []
        with self.factory.begin() as session:
            for found in overuse.find(session):
                incident = overuse.open_incident(session, found, self.lifecycle)
                if incident is not None:
                    session.flush()
                    opened.append((incident.grid_id, IncidentView.of(incident).to_json()))
                    log.warning(kv("pass_overuse", pass_id=found.pass_id, uses=found.uses,
                                   granted=found.granted, gateways=found.gateways,
                                   incident=incident.id))
            residents.prune(session)
        self.counters.inc("passes.overuse_incidents", len(opened))
        return opened

    async def reconcile_now(self) -> int:
        """A round, then the live board and the notifier hear of what it opened."""
        opened = await asyncio.to_thread(self.reconcile)
        for grid, incident in opened:
            if self.hub is not None:
                self.hub.publish(grid, {"type": "incident", "event": "opened",
                                        "incident": incident})
        if opened and self.on_pages is not None:
            self.on_pages()
        return len(opened)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(RECONCILE_S * random.uniform(0.8, 1.2))
            try:
                await self.reconcile_now()
            except Exception:
                self.counters.inc("passes.errors")
                log.exception(kv("pass_reconcile_failed"))
