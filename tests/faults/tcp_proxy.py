"""A TCP proxy between a gateway and its broker that can cut the link for real.

``cut()`` behaves like a 4G link going dark, not like a refused connection: bytes stop flowing
both ways and new connections hang, so the agent only notices through its keepalive and the
broker only through the gateway's. ``restore()`` drops the dead connections (as a carrier NAT
would have) and lets new ones through.

Given several target ports it is also a balancer in front of a broker cluster: each new
connection goes to the next target that accepts it, so a client whose node died reconnects to
another through the same address (as a TCP load balancer in front of EMQX or NATS does).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading

from gridsense_devtools.ports import free_port


class CuttableProxy:
    def __init__(self, target_port: int | list[int], listen_port: int | None = None) -> None:
        self.targets = [target_port] if isinstance(target_port, int) else list(target_port)
        self._next = 0  # the target the next connection tries first
        self.port = listen_port or free_port()
        self._loop = asyncio.new_event_loop()
        self._flowing = asyncio.Event()
        self._writers: set[asyncio.StreamWriter] = set()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None

    def __enter__(self) -> CuttableProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *_exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def cut(self) -> None:
        self._loop.call_soon_threadsafe(self._flowing.clear)

    def restore(self) -> None:
        asyncio.run_coroutine_threadsafe(self._restore(), self._loop).result(10)

    async def _start(self) -> None:
        self._flowing.set()
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
        await self._close_all()

    async def _restore(self) -> None:
        await self._close_all()
        self._flowing.set()

    async def _close_all(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        await self._flowing.wait()  # while cut, a new connection hangs like a dead link
        upstream = await self._connect_upstream()
        if upstream is None:
            writer.transport.abort()
            return
        up_reader, up_writer = upstream
        self._writers.add(up_writer)
        await asyncio.gather(
            self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True
        )

    async def _connect_upstream(
        self,
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        for attempt in range(len(self.targets)):
            index = (self._next + attempt) % len(self.targets)
            try:
                connection = await asyncio.open_connection("127.0.0.1", self.targets[index])
            except OSError:
                continue
            self._next = (index + 1) % len(self.targets)
            return connection
        return None

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                await self._flowing.wait()  # bytes read during a cut are held, never delivered
                if writer.transport.is_closing():
                    break
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.transport.abort()
            self._writers.discard(writer)
