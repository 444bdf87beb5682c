"""Ports for private services: free ones to hand out, and who holds one that is taken."""

from __future__ import annotations

import os
import random
import socket
from pathlib import Path

_handed_out: set[int] = set()
_XDIST_PORTS = range(20000, 32000)  # below Linux's default ephemeral range (32768-60999)
_LISTEN = "0A"  # the TCP state "listen" in /proc/net/tcp


class PortTaken(RuntimeError):
    """A fixed port the caller asked for is held by another process."""


def free_port() -> int:
    """A port nobody listens on now, and one this process has not handed out before: the
    kernel may offer the same ephemeral port to two calls in a row (InfluxDB's HTTP and RPC
    ports once came out equal).

    Under pytest-xdist each worker draws from its own block below the ephemeral range, so two
    workers racing for a port can never both be handed it (the kernel's own choice cannot be
    partitioned: bind() to port 0 hands out ports of one parity only)."""
    workers, index = _xdist_worker()
    block = (_XDIST_PORTS.stop - _XDIST_PORTS.start) // workers
    first = _XDIST_PORTS.start + index * block
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", random.randrange(first, first + block) if workers > 1
                           else 0))
            except OSError:  # taken: draw again
                continue
            port = int(sock.getsockname()[1])
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def _xdist_worker() -> tuple[int, int]:
    """(number of test workers, this one's index); (1, 0) outside pytest-xdist."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")  # "gw0", "gw1", ...
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    if not worker.startswith("gw") or count < 2:
        return 1, 0
    return count, int(worker[2:]) % count


def require_free(ports: dict[str, int]) -> None:
    """Raise PortTaken naming the first of ``ports`` ({what: port}) somebody listens on, and
    the process holding it, so a fixed port is never silently shared with a stale service."""
    for what, port in ports.items():
        if _listened_on(port):
            raise PortTaken(f"port {port} ({what}) is already in use by {port_holder(port)}")


def _listened_on(port: int) -> bool:
    # SO_REUSEADDR as the services set it: connections in TIME_WAIT from a previous run do not
    # count, only a socket that listens.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def port_holder(port: int) -> str:
    """``pid 1234 (mosquitto -c /x/mosquitto.conf)`` for the process listening on ``port``."""
    inodes = _listening_inodes(port)
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            sockets = {os.readlink(fd) for fd in (proc / "fd").iterdir()}
        except OSError:  # gone meanwhile, or another user's
            continue
        if any(f"socket:[{inode}]" in sockets for inode in inodes):
            return f"pid {proc.name} ({_command_line(proc)})"
    return "a process this user cannot see (another user's, or outside this container)"


def _listening_inodes(port: int) -> set[str]:
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == _LISTEN and int(local.rsplit(":", 1)[1], 16) == port:
                inodes.add(inode)
    return inodes


def _command_line(proc: Path) -> str:
    try:
        return (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "?"
