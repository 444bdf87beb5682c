"""systemd's notify protocol, without a library: READY once the agent runs, WATCHDOG pings
from the event loop (a loop that stalls stops pinging, and systemd restarts the agent),
STOPPING on the way out. Outside systemd (no NOTIFY_SOCKET) every call is a no-op."""

from __future__ import annotations

import asyncio
import os
import socket

NOTIFY_SOCKET, WATCHDOG_USEC, WATCHDOG_PID = "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"


def notify(state: str) -> bool:
    """Send ``state`` (e.g. ``READY=1``) to the service manager; False when there is none."""
    address = os.environ.get(NOTIFY_SOCKET)
    if not address:
        return False
    if address.startswith("@"):  # an abstract socket
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.sendto(state.encode(), address)
    except OSError:
        return False  # the manager went away: nothing the agent can do about it
    return True


def watchdog_interval_s() -> float | None:
    """How often to ping: half the manager's watchdog period, or None when it set none."""
    usec = os.environ.get(WATCHDOG_USEC)
    pid = os.environ.get(WATCHDOG_PID)
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        return max(0.1, int(usec) / 2e6)
    except ValueError:
        return None


async def watchdog_loop(interval_s: float) -> None:
    while True:
        notify("WATCHDOG=1")
        await asyncio.sleep(interval_s)
