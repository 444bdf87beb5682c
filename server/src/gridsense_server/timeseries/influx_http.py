"""The time-series store's HTTP API as the writer and the chart reader need it: create the
database, write a body and say whether the body is done with (written, or refused for good) or
must be retried. InfluxDB 1.x's /write and /query; VictoriaMetrics takes the same /write (and has
no database to create); influx_v2.py writes to InfluxDB 2.x/3.x through influxdb-client.

The store down (connection error, timeout, 5xx, 404/408/429): retry. The store says the batch is
wrong (other 4xx): logged, counted as rejected, done — resending would never succeed, and
holding it would stop every batch behind it (the writer dead-letters the messages at fault).
"""

from __future__ import annotations

import logging
import re
import time
from enum import Enum
from typing import Any

import httpx

from ..config import InfluxConfig
from ..counters import Counters
from ..logs import kv

log = logging.getLogger(__name__)

_DROPPED_RE = re.compile(r"dropped=(\d+)")
_RETRYABLE_4XX = frozenset({404, 408, 429})  # 404: database missing (dropped?): re-create


class Outcome(Enum):
    WRITTEN = "written"
    REJECTED = "rejected"  # done with: InfluxDB will never take it
    RETRY = "retry"

    @property
    def done(self) -> bool:
        return self is not Outcome.RETRY


class QueryFailed(Exception):
    """A read InfluxDB did not answer (down, or it refused the query); the message says why."""


class InfluxHttp:
    def __init__(self, config: InfluxConfig, counters: Counters, request_timeout_s: float) -> None:
        self.config = config
        self.creates_database = config.kind == "influxdb-v1"
        self.counters = counters
        self._request_timeout_s = request_timeout_s
        self._client: httpx.AsyncClient | None = None
        self.database_ready = False
        # Why the last write did not get through (None: it did, or none was tried): /healthz.
        self.unavailable: str | None = None
        self.last_rejection = ""  # InfluxDB's answer to the last batch it refused for good

    async def open(self) -> None:
        # trust_env=False: a proxy variable meant for the internet must not capture InfluxDB.
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(self._request_timeout_s, connect=5.0), trust_env=False
        )

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def ensure_database(self) -> bool:
        assert self._client is not None
        if not self.creates_database:  # VictoriaMetrics: labels, no databases
            self.database_ready = True
            return True
        try:
            response = await self._client.post(
                f"{self.config.url}/query", data={"q": f'CREATE DATABASE "{self.config.database}"'}
            )
        except httpx.HTTPError as exc:
            self.unavailable = f"InfluxDB at {self.config.url} unreachable: {exc!r}"[:300]
            self.counters.inc("influx.connect_errors")
            log.warning(kv("influx_unreachable", url=self.config.url, error=repr(exc)))
            return False
        if response.status_code != 200:
            log.warning(kv("influx_create_database_failed", status=response.status_code,
                           body=response.text[:500]))
            return False
        log.info(kv("influx_database_ready", url=self.config.url, database=self.config.database))
        self.database_ready = True
        return True

    async def write(self, body: bytes, lines: int, *, backlog: int = 0) -> Outcome:
        assert self._client is not None
        if not self.database_ready and not await self.ensure_database():
            return Outcome.RETRY
        started = time.perf_counter()
        try:
            response = await self._client.post(
                f"{self.config.url}/write",
                params={"db": self.config.database, "precision": "ns"},
                content=body,
            )
        except httpx.HTTPError as exc:
            self.counters.observe("influx.write", time.perf_counter() - started)
            return self.unreachable(exc, lines, backlog)
        self.counters.observe("influx.write", time.perf_counter() - started)
        return self.outcome(response.status_code, response.text, lines, backlog)

    def unreachable(self, exc: Exception, lines: int, backlog: int) -> Outcome:
        self.unavailable = f"InfluxDB at {self.config.url} unreachable: {exc!r}"[:300]
        self.counters.inc("influx.connect_errors")
        log.warning(kv("influx_write_retry", lines=lines, error=repr(exc), waiting_lines=backlog))
        return Outcome.RETRY

    def outcome(self, status: int, text: str, lines: int, backlog: int) -> Outcome:
        """What a write's answer means for the batch, counted and logged."""
        self.unavailable = None if status < 500 else f"InfluxDB answered HTTP {status}"
        if status in (200, 204):
            self.counters.inc("influx.written_lines", lines)
            self.counters.inc("influx.written_batches")
            return Outcome.WRITTEN
        text = text[:2000]
        if status >= 500 or status in _RETRYABLE_4XX:
            self.counters.inc("influx.server_errors")
            if status == 404:
                self.database_ready = False
            log.warning(kv("influx_write_retry", status=status, lines=lines, body=text,
                           waiting_lines=backlog))
            return Outcome.RETRY
        self._count_rejected(lines, status, text)
        self.last_rejection = f"HTTP {status} {text[:300]}"
        return Outcome.REJECTED

    def query_headers(self) -> dict[str, str]:
        return {}

    async def get_json(self, path: str, params: dict[str, Any]) -> Any:
        """One read of the store's HTTP API, decoded; raises QueryFailed saying why."""
        if self._client is None:
            raise QueryFailed("time-series client not started")
        try:
            response = await self._client.get(f"{self.config.url}{path}", params=params,
                                              headers=self.query_headers())
        except httpx.HTTPError as exc:
            self.counters.inc("influx.query_errors")
            raise QueryFailed(f"{self.config.kind} at {self.config.url} unreachable: "
                              f"{exc!r}"[:300]) from None
        if response.status_code != 200:
            self.counters.inc("influx.query_errors")
            raise QueryFailed(f"{self.config.kind} answered HTTP {response.status_code}: "
                              f"{response.text[:300]}")
        try:
            return response.json()
        except ValueError:
            self.counters.inc("influx.query_errors")
            raise QueryFailed(f"{self.config.kind} answered something other than JSON: "
                              f"{response.text[:300]}") from None

    def query_database(self) -> str:
        return self.config.database

    async def query(self, influxql: str) -> dict[str, Any]:
        """One InfluxQL read (times as epoch milliseconds); raises QueryFailed saying why."""
        body: dict[str, Any] = await self.get_json(
            "/query", {"db": self.query_database(), "q": influxql, "epoch": "ms"})
        errors = [r["error"] for r in body.get("results", []) if "error" in r]
        if errors:
            self.counters.inc("influx.query_errors")
            raise QueryFailed(f"InfluxDB refused the query: {errors[0][:300]}")
        return body

    def _count_rejected(self, lines: int, status: int, body: str) -> None:
        # A partial write stored the other lines: InfluxDB lists each unparsable line and
        # counts the lines it refused to store (``dropped=N``).
        partial = "partial write" in body
        if partial:
            match = _DROPPED_RE.search(body)
            rejected = body.count("unable to parse") + (int(match.group(1)) if match else 0)
            rejected = min(max(rejected, 1), lines)
            self.counters.inc("influx.written_lines", lines - rejected)
        else:
            rejected = lines
        self.counters.inc("influx.rejected_batches")
        self.counters.inc("influx.rejected_lines", rejected)
        log.error(kv("influx_batch_rejected", status=status, lines=lines, rejected=rejected,
                     partial=partial, body=body))
