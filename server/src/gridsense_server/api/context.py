"""What the HTTP layer needs from the rest of the server, handed over in one object."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from ..counters import Counters
from ..live.hub import LiveHub
from ..notify.channel_check import CheckResult
from .tokens import TokenSigner


@dataclass(frozen=True, slots=True)
class Health:
    """``ok``, ``degraded`` (still serving: 200) or ``down`` (503), with the reasons."""

    status: str
    reasons: list[str]


@dataclass
class ApiContext:
    factory: sessionmaker[Session]
    signer: TokenSigner
    hub: LiveHub
    counters: Counters
    # Gauges for /healthz (MQTT connected, InfluxDB buffer...), read at request time.
    gauges: Callable[[], dict[str, Any]] = field(default=lambda: {})
    health: Callable[[], Health] = field(default=lambda: Health("ok", []))
    # "Send a test message" (who, channel) -> each vendor's answer; blocking.
    channel_test: Callable[[str, str | None], list[CheckResult]] | None = None
    # The Prometheus text of this process, made at request time (blocking: database reads),
    # and the bearer token that opens it on the main port (None: only the local port).
    metrics: Callable[[], bytes] | None = None
    metrics_token: str | None = None
