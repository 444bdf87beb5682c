"""InfluxDB 2.x/3.x (org, bucket, token) through influxdb-client: writes and InfluxQL reads.

Writes use the client's synchronous write API only. Its default background batching answers
before the data is stored, and the ingest acknowledges a message to the broker once its lines
are durable: a batch counts as written only when the call returned. The client blocks on its own
HTTP pool, so each call runs in a worker thread while the event loop goes on. Its answers are
judged as the v1 writer judges them: unreachable, 5xx and 404/408/429 are retried (the spool
takes over on a long outage), any other refusal is final for that batch.

Charts read InfluxQL through the v1-compatible ``/query`` with the same token (InfluxDB 2.x
needs a DBRP mapping for the bucket: ``influx v1 dbrp create``; docs/operations.md).
VictoriaMetrics takes the same v2 writes on ``/api/v2/write``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from influxdb_client import InfluxDBClient, WritePrecision
from influxdb_client.client.write_api import SYNCHRONOUS, WriteApi
from influxdb_client.rest import ApiException
from urllib3.exceptions import HTTPError as Urllib3Error

from ..config import InfluxConfig
from ..counters import Counters
from ..logs import kv
from .influx_http import InfluxHttp, Outcome

log = logging.getLogger(__name__)


class InfluxV2Http(InfluxHttp):
    def __init__(self, config: InfluxConfig, counters: Counters, request_timeout_s: float) -> None:
        super().__init__(config, counters, request_timeout_s)
        assert config.token_file is not None and config.org is not None  # the config says so
        self._token = config.token_file.read_text(encoding="utf-8").strip()
        self._v2: InfluxDBClient | None = None
        self._write_api: WriteApi | None = None

    async def open(self) -> None:
        await super().open()
        self._v2 = InfluxDBClient(url=self.config.url, token=self._token, org=self.config.org,
                                  timeout=int(self._request_timeout_s * 1000))
        self._write_api = self._v2.write_api(write_options=SYNCHRONOUS)

    async def close(self) -> None:
        if self._v2 is not None:
            await asyncio.to_thread(self._v2.close)
            self._v2 = self._write_api = None
        await super().close()

    async def ensure_database(self) -> bool:
        # The bucket is the operator's (with its retention and the token's rights to it): a
        # missing one is answered 404 to the first write, logged with the bucket's name.
        self.database_ready = True
        return True

    async def write(self, body: bytes, lines: int, *, backlog: int = 0) -> Outcome:
        assert self._write_api is not None
        started = time.perf_counter()
        try:
            await asyncio.to_thread(self._write_api.write, self.config.bucket_name,
                                    self.config.org, body, WritePrecision.NS)
        except ApiException as exc:
            self.counters.observe("influx.write", time.perf_counter() - started)
            status = int(exc.status or 0)
            if status == 0:
                return self.unreachable(exc, lines, backlog)
            if status == 404:
                log.warning(kv("influx_bucket_missing", bucket=self.config.bucket_name,
                               org=self.config.org))
            return self.outcome(status, _text(exc.body), lines, backlog)
        except (Urllib3Error, OSError) as exc:
            self.counters.observe("influx.write", time.perf_counter() - started)
            return self.unreachable(exc, lines, backlog)
        self.counters.observe("influx.write", time.perf_counter() - started)
        return self.outcome(204, "", lines, backlog)

    def query_headers(self) -> dict[str, str]:
        return {"Authorization": f"Token {self._token}"}

    def query_database(self) -> str:
        return self.config.bucket_name


def _text(body: Any) -> str:
    if isinstance(body, bytes):
        return body.decode("utf-8", "replace")
    return str(body or "")
