"""Building the cookie flow's parts from the config, and their upkeep task."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.orm import Session, sessionmaker

from ..audit import RefusalSink
from ..auth.addresses import parse_networks
from ..auth.sessions import SessionStore
from ..auth.throttle import Throttle
from ..config import ServerConfig
from ..logs import kv
from .web_auth import WebAuth

log = logging.getLogger(__name__)
UPKEEP_EVERY_S = 60.0
LOGIN_SCOPE = "login"


def login_throttle(factory: sessionmaker[Session], config: ServerConfig) -> Throttle:
    return Throttle(factory, config.auth.throttle, LOGIN_SCOPE)


def make_web_auth(factory: sessionmaker[Session], config: ServerConfig, secret: bytes,
                  refusals: RefusalSink) -> WebAuth:
    return WebAuth(SessionStore(factory, config.auth.sessions), login_throttle(factory, config),
                   secret, refusals, parse_networks(config.auth.throttle.trusted_proxies),
                   cookie_secure=config.auth.sessions.cookie_secure,
                   public_url=config.lifecycle.public_url)


async def run_upkeep(web: WebAuth) -> None:
    """Ended sessions and stale throttle rows pruned, so both tables stay bounded."""
    while True:
        await asyncio.sleep(UPKEEP_EVERY_S)
        try:
            sessions = await asyncio.to_thread(web.sessions.prune)
            throttled = await asyncio.to_thread(web.throttle.prune)
            if sessions or throttled:
                log.info(kv("auth_pruned", sessions=sessions, throttle_rows=throttled))
        except Exception:
            log.exception(kv("auth_prune_failed"))
