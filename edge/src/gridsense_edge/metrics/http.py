"""A minimal HTTP/1.0 responder for ``GET /metrics`` on the agent's own asyncio loop: no thread,
no web framework on the gateway. Bounded: one request line and headers of at most 8 KiB, read
within 5 s; then the connection closes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from ..logs import log_event

log = logging.getLogger(__name__)

MEDIA_TYPE = b"text/plain; version=0.0.4; charset=utf-8"
MAX_HEAD_BYTES = 8192
READ_TIMEOUT_S = 5.0


class MetricsListener:
    def __init__(self, page: Callable[[], bytes], host: str, port: int) -> None:
        self._page = page
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None

    async def start(self) -> int | None:
        """Listen; the bound port (``port`` 0 picks a free one). None when the port cannot be
        had: logged, and the agent runs on without metrics (sensing matters more)."""
        try:
            self._server = await asyncio.start_server(self._serve, self.host, self.port,
                                                      limit=MAX_HEAD_BYTES)
        except OSError as exc:
            log_event(log, "metrics_listen_failed", logging.ERROR,
                      address=f"{self.host}:{self.port}", setting="metrics.port",
                      error=repr(exc))
            return None
        self.port = int(self._server.sockets[0].getsockname()[1])
        log_event(log, "metrics_listening", url=f"http://{self.host}:{self.port}/metrics")
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(READ_TIMEOUT_S):
                head = await reader.readuntil(b"\r\n\r\n")
            method, _, rest = head.partition(b" ")
            path = rest.split(b" ", 1)[0].split(b"?", 1)[0]
            if method != b"GET":
                await _answer(writer, b"405 Method Not Allowed", b"GET only\n")
            elif path != b"/metrics":
                await _answer(writer, b"404 Not Found", b"see /metrics\n")
            else:
                await _answer(writer, b"200 OK", self._page(), MEDIA_TYPE)
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                ConnectionError):
            pass  # a client that sent too much, too slowly or nothing: just close
        except Exception as exc:  # a bug in a page: logged, the agent goes on
            log_event(log, "metrics_page_failed", logging.ERROR, error=repr(exc))
            with contextlib.suppress(Exception):
                await _answer(writer, b"500 Internal Server Error", b"see the agent's log\n")
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


async def _answer(writer: asyncio.StreamWriter, status: bytes, body: bytes,
                  media_type: bytes = b"text/plain; charset=utf-8") -> None:
    writer.write(b"HTTP/1.0 " + status + b"\r\nContent-Type: " + media_type
                 + b"\r\nContent-Length: " + str(len(body)).encode()
                 + b"\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n" + body)
    await writer.drain()
