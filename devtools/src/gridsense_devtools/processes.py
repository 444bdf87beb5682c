"""Child processes of the tests, benchmarks and the demo: each logs to a file and dies with us."""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

BIN = Path(sys.executable).parent
_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)


def env_without_proxies() -> dict[str, str]:
    """Child processes talk to loopback only; a proxy variable must not intercept that."""
    env = dict(os.environ)
    for key in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "all_proxy"):
        env.pop(key, None)
    env["NO_PROXY"] = "127.0.0.1,localhost"
    return env


def spawn(
    argv: list[str],
    log_path: Path,
    *,
    cwd: Path | None = None,
    stdin: int | IO[Any] | None = subprocess.DEVNULL,
    stdout: int | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` with its output appended to ``log_path`` (only its stderr when ``stdout``
    is given, e.g. PIPE); it dies with this process. ``env``: variables added to this one's.

    A session of its own, so a Ctrl-C meant for the demo's shell reaches the demo, which then
    stops its children in order. Killed hard, the demo cannot do that: the kernel's parent-death
    signal does it instead, so no broker or database outlives its owner holding its port. The
    signal follows the thread that forked: start children from a thread that lives as long."""
    parent = os.getpid()

    def die_with_parent() -> None:
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the parent died before the signal was armed
            os.kill(os.getpid(), signal.SIGKILL)

    with log_path.open("ab") as log:
        return subprocess.Popen(
            argv,
            stdout=log if stdout is None else stdout,
            stderr=subprocess.STDOUT if stdout is None else log,
            stdin=stdin,
            env={**env_without_proxies(), **(env or {})},
            cwd=cwd,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )


def stop_process(
    popen: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 15
) -> int:
    """Signal, wait, and kill what does not stop in time; returns the exit code."""
    if popen.poll() is None:
        popen.send_signal(sig)
        try:
            popen.wait(timeout)
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait(5)
    return popen.returncode


class WaitTimedOut(AssertionError, TimeoutError):
    """A wait ran out: a failed assertion to a test, a timeout to the demo."""


def wait_until(
    condition: Callable[[], Any], timeout: float = 30.0, what: str = "", interval: float = 0.05
) -> Any:
    """Poll ``condition`` until it returns something truthy; fail naming ``what``. The one
    poller of the synchronous tests and the demo."""
    deadline = time.monotonic() + timeout
    while True:
        last = condition()
        if last:
            return last
        if time.monotonic() > deadline:
            raise WaitTimedOut(f"timed out after {timeout:.0f}s waiting for "
                               f"{what or condition} (last: {last!r})")
        time.sleep(interval)


async def async_wait_until(
    condition: Callable[[], Any], within_s: float = 20.0, what: str = ""
) -> Any:
    """Poll ``condition`` (plain or async) until truthy; fail after ``within_s``."""
    deadline = time.monotonic() + within_s
    while True:
        value = condition()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise WaitTimedOut(f"timed out after {within_s}s waiting for {what or condition}")
        await asyncio.sleep(0.05)


class Proc:
    """A gridsense CLI (or any program) in its own session, with its output in a log file."""

    def __init__(self, name: str, argv: list[str], log_dir: Path, *, cwd: Path | None = None,
                 stdin: int = subprocess.DEVNULL) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self.popen = spawn(argv, self.log_path, cwd=cwd, stdin=stdin)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        return stop_process(self.popen, sig, timeout)

    def kill9(self) -> None:
        self.stop(signal.SIGKILL)


class Procs:
    """Processes in start order; stopped in reverse order, gently first."""

    def __init__(self, log_dir: Path, cwd: Path | None = None) -> None:
        self.log_dir = log_dir
        self.cwd = cwd
        self.started: list[Proc] = []

    def start(self, name: str, *argv: str, stdin: int = subprocess.DEVNULL) -> Proc:
        """``argv[0]`` is a program in the venv's bin folder, or an absolute path."""
        proc = Proc(name, [str(BIN / argv[0]), *argv[1:]], self.log_dir, cwd=self.cwd,
                    stdin=stdin)
        self.started.append(proc)
        return proc

    def check(self) -> None:
        """Raise if any of them has exited (the demo's parts must all keep running)."""
        for proc in self.started:
            if not proc.alive():
                raise RuntimeError(
                    f"{proc.name} exited with {proc.popen.returncode}; see {proc.log_path}"
                )

    def wait_until(self, condition: Callable[[], Any], timeout: float, what: str) -> Any:
        """``wait_until``, stopped at once by any of these processes exiting meanwhile."""

        def checked() -> Any:
            self.check()
            return condition()

        return wait_until(checked, timeout, what, interval=0.2)

    def stop_all(self) -> None:
        for proc in reversed(self.started):
            proc.stop()

    def logs(self) -> str:
        return "\n".join(f"----- {p.name} -----\n{p.log()[-4000:]}" for p in self.started)
