"""Lending a serial port: a running agent lets go of a port while a local tool (discovery)
scans it, and takes it back when that tool's connection closes — on purpose or by a crash.

The agent listens on a unix socket in its state folder (``control.sock``, mode 0600). A client
sends one JSON line ``{"op": "release", "port": "/dev/ttyUSB0"}``; once every driver on that
port has closed it the agent answers ``{"ok": true, "holders": [...]}`` and the port stays
lent until the client closes the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from .logs import log_event

log = logging.getLogger(__name__)

SOCKET_NAME = "control.sock"
RELEASE_TIMEOUT_S = 10.0  # a driver mid-request finishes it first; a serial request is < 1 s
MAX_CLIENTS = 4
MAX_LINE = 4096
LENT = "串口借给设备发现 / lent to a local tool (discovery)"  # what health says meanwhile


class PortHolder(Protocol):
    """A driver-side owner of a port; ``release`` returns once the port is closed."""

    name: str

    async def release(self) -> None: ...

    def take_back(self) -> None: ...


def same_port(a: str, b: str) -> bool:
    """/dev/serial/by-id/... and /dev/ttyUSB0 (or a pty link and its pty) are one port."""
    if "://" in a or "://" in b:
        return a == b
    return os.path.realpath(a) == os.path.realpath(b)


class PortLeases:
    """Which holders own which port, in the agent; the control server asks them to let go."""

    def __init__(self) -> None:
        self._holders: dict[str, list[PortHolder]] = {}

    def register(self, port: str, holder: PortHolder) -> None:
        holders = self._holders.setdefault(port, [])
        if holder not in holders:
            holders.append(holder)

    def holders_of(self, port: str) -> list[PortHolder]:
        return [h for p, hs in self._holders.items() if same_port(p, port) for h in hs]

    async def release(self, port: str) -> list[PortHolder]:
        holders = self.holders_of(port)
        try:
            await asyncio.wait_for(asyncio.gather(*(h.release() for h in holders)),
                                   RELEASE_TIMEOUT_S)
        except BaseException:
            for holder in holders:
                holder.take_back()
            raise
        return holders


class PortControlServer:
    """The agent's end of ``control.sock``."""

    def __init__(self, state_dir: Path, leases: PortLeases) -> None:
        self.path = state_dir / SOCKET_NAME
        self.leases = leases
        self._server: asyncio.AbstractServer | None = None
        self._clients = 0

    async def start(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # left by a killed agent: nobody listens on it any more
        old_umask = os.umask(0o177)
        try:
            self._server = await asyncio.start_unix_server(self._serve, path=str(self.path),
                                                           limit=MAX_LINE)
        except OSError as exc:  # e.g. a path over the 108-byte limit: run on without lending
            log_event(log, "port_control_unavailable", logging.WARNING, path=str(self.path),
                      error=str(exc))
        finally:
            os.umask(old_umask)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        lent: list[PortHolder] = []
        self._clients += 1
        try:
            if self._clients > MAX_CLIENTS:
                await _answer(writer, {"ok": False, "error": "too many control clients"})
                return
            try:
                request = json.loads(await reader.readline())
                port = str(request["port"])
                if request.get("op") != "release":
                    raise ValueError(f"unknown op {request.get('op')!r}")
            except (ValueError, KeyError, TypeError, asyncio.LimitOverrunError) as exc:
                await _answer(writer, {"ok": False, "error": f"bad request: {exc}"})
                return
            try:
                lent = await self.leases.release(port)
            except TimeoutError:
                await _answer(writer, {"ok": False, "error": f"{port}: drivers did not let go "
                                       f"within {RELEASE_TIMEOUT_S:g} s"})
                return
            names = [h.name for h in lent]
            log_event(log, "port_lent", port=port, holders=",".join(names) or "none")
            await _answer(writer, {"ok": True, "holders": names})
            while await reader.read(1024):  # lent until the client hangs up
                pass
        except (ConnectionError, OSError):
            pass
        finally:
            self._clients -= 1
            for holder in lent:
                holder.take_back()
            if lent:
                log_event(log, "port_taken_back", holders=",".join(h.name for h in lent))
            writer.close()


async def _answer(writer: asyncio.StreamWriter, message: dict[str, object]) -> None:
    writer.write(json.dumps(message).encode() + b"\n")
    await writer.drain()


class PortLeaseError(Exception):
    """The agent would not (or could not) lend the port."""


@contextlib.contextmanager
def borrow_port(state_dir: Path | None, port: str, timeout_s: float = RELEASE_TIMEOUT_S + 5
                ) -> Iterator[list[str]]:
    """The client's end: while the block runs, the agent at ``state_dir`` keeps off ``port``.

    Yields the names of the drivers that let go (empty when no agent runs there, or none of
    its drivers uses the port).
    """
    path = state_dir / SOCKET_NAME if state_dir is not None else None
    if path is None or not path.exists():
        yield []
        return
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.settimeout(timeout_s)
    try:
        try:
            conn.connect(str(path))
        except (ConnectionRefusedError, FileNotFoundError):
            conn.close()  # a socket file left behind by a killed agent: nobody to ask
            yield []
            return
        except PermissionError:
            raise PortLeaseError(f"{path}: permission denied (run as the agent's user or "
                                 "root / 请以网关代理的用户或 root 运行)") from None
        conn.sendall(json.dumps({"op": "release", "port": port}).encode() + b"\n")
        answer = _read_line(conn)
        if not answer.get("ok"):
            raise PortLeaseError(f"{path}: {answer.get('error', 'refused')}")
        yield [str(name) for name in answer.get("holders", [])]
    finally:
        conn.close()


def _read_line(conn: socket.socket) -> dict[str, object]:
    data = b""
    while not data.endswith(b"\n") and len(data) < MAX_LINE:
        chunk = conn.recv(MAX_LINE)
        if not chunk:
            break
        data += chunk
    try:
        answer = json.loads(data)
    except ValueError:
        raise PortLeaseError(f"the agent answered {data[:80]!r}") from None
    if not isinstance(answer, dict):
        raise PortLeaseError(f"the agent answered {data[:80]!r}")
    return answer
