"""Private Mosquitto and InfluxDB, each in a folder of its own, for tests, benches and the demo.

All run the real Debian binaries with the same configuration; nothing here talks to the
system-wide services.
"""

from __future__ import annotations

import contextlib
import getpass
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from gridsense_devtools.ports import free_port
from gridsense_devtools.processes import spawn, stop_process


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}; log:\n{_tail(log)}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"{proc.args[0]} did not listen on {port} in {timeout}s; log:\n{_tail(log)}")


def _tail(log: Path, lines: int = 30) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@dataclass
class _Service:
    directory: Path
    port: int
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def log_path(self) -> Path:
        return self.directory / "service.log"

    def _spawn(self, argv: list[str], timeout: float) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.proc = spawn(argv, self.log_path)
        _wait_for_port(self.port, self.proc, self.log_path, timeout)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
        if self.proc is not None:
            stop_process(self.proc, sig, timeout)

    def kill(self) -> None:
        """kill -9, for fault tests."""
        self.stop(signal.SIGKILL)

    def pause(self) -> None:
        """SIGSTOP: the process keeps its sockets but answers nothing, like a hung peer."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGCONT)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


@dataclass
class TlsListener:
    """A TLS listener of a private Mosquitto: the CA clients are checked against, the broker's
    certificate and key (issued by that CA)."""

    cafile: Path
    certfile: Path
    keyfile: Path
    require_certificate: bool = False
    port: int = field(default_factory=free_port)

    def config_lines(self) -> list[str]:
        # per_listener_settings is off: the password file and ACL apply here as well.
        lines = [
            f"listener {self.port} 127.0.0.1",
            f"cafile {self.cafile}",
            f"certfile {self.certfile}",
            f"keyfile {self.keyfile}",
        ]
        if self.require_certificate:
            lines.append("require_certificate true")
        return lines


def dynsec_plugin() -> Path:
    """Mosquitto's dynamic-security plugin of this machine (its folder is per architecture)."""
    for found in sorted(Path("/usr/lib").glob("*/mosquitto_dynamic_security.so")):
        return found
    fallback = Path("/usr/lib/mosquitto_dynamic_security.so")
    if fallback.exists():
        return fallback
    raise RuntimeError("mosquitto_dynamic_security.so not found (apt-get install mosquitto)")


@dataclass
class Mosquitto(_Service):
    """A private broker. ``extra_config`` lines are appended (ACLs, persistence, limits).

    Accounts come from one of: nothing (anonymous allowed), ``users`` (a password file, with
    ``acl_file``), or ``dynsec_file`` (the dynamic-security plugin with that state file, which
    the caller writes first and the broker then keeps up to date)."""

    extra_config: list[str] = field(default_factory=list)
    persistence: bool = False
    # username -> password; when set, anonymous clients are refused and the ACL applies.
    users: dict[str, str] | None = None
    acl_file: Path | None = None
    dynsec_file: Path | None = None
    # A second listener, speaking TLS (tls.port), next to the plain one on ``port``.
    tls: TlsListener | None = None

    @property
    def config_path(self) -> Path:
        return self.directory / "mosquitto.conf"

    def write_config(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        lines = [
            f"listener {self.port} 127.0.0.1",
            # Started as root, Mosquitto would drop to user "mosquitto" and then fail to read
            # its password file or write persistence in a private temp dir: stay who we are.
            f"user {getpass.getuser()}",
            *self._auth_config(),
            # stderr, not stdout: stdout into a file is block-buffered, so a test reading the
            # broker's log would see its lines only after the broker exits.
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_timestamp_format %Y-%m-%dT%H:%M:%S",
            f"persistence {'true' if self.persistence else 'false'}",
        ]
        if self.persistence:
            lines += [f"persistence_location {self.directory}/", "autosave_interval 5"]
        if self.tls is not None:
            lines += self.tls.config_lines()
        lines += self.extra_config
        self.config_path.write_text("\n".join(lines) + "\n")

    def _auth_config(self) -> list[str]:
        if self.dynsec_file is not None:
            if self.users is not None:
                raise ValueError("a broker takes its accounts from users or dynsec_file, not both")
            return ["allow_anonymous false", f"plugin {dynsec_plugin()}",
                    f"plugin_opt_config_file {self.dynsec_file}"]
        if self.users is None:
            return ["allow_anonymous true"]
        passwords = self.directory / "passwords"
        passwords.unlink(missing_ok=True)
        for user, password in self.users.items():
            subprocess.run(
                [
                    "mosquitto_passwd",
                    "-b",
                    *([] if passwords.exists() else ["-c"]),
                    str(passwords),
                    user,
                    password,
                ],
                check=True,
                capture_output=True,
            )
        lines = ["allow_anonymous false", f"password_file {passwords}"]
        if self.acl_file is not None:
            lines.append(f"acl_file {self.acl_file}")
        return lines

    def start(self, timeout: float = 10.0) -> Mosquitto:
        if shutil.which("mosquitto") is None and not Path("/usr/sbin/mosquitto").exists():
            raise RuntimeError("mosquitto is not installed (apt-get install mosquitto)")
        self.write_config()
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self._spawn([binary, "-c", str(self.config_path)], timeout)
        if self.tls is not None and self.proc is not None:
            _wait_for_port(self.tls.port, self.proc, self.log_path, timeout)
        return self


@dataclass
class InfluxDB(_Service):
    """A private InfluxDB 1.x (Debian's influxdb package) with its data in ``directory``."""

    rpc_port: int = field(default_factory=free_port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def write_config(self) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        d = self.directory
        config = f"""
reporting-disabled = true
bind-address = "127.0.0.1:{self.rpc_port}"
[meta]
  dir = "{d}/meta"
[data]
  dir = "{d}/data"
  wal-dir = "{d}/wal"
  query-log-enabled = false
  index-version = "inmem"
[coordinator]
[retention]
  enabled = true
[shard-precreation]
  enabled = false
[monitor]
  store-enabled = false
[http]
  enabled = true
  bind-address = "127.0.0.1:{self.port}"
  auth-enabled = false
  log-enabled = false
  max-body-size = 50000000
[logging]
  level = "warn"
[subscriber]
  enabled = false
[continuous_queries]
  enabled = false
"""
        path = d / "influxdb.conf"
        path.write_text(config)
        return path

    def start(self, timeout: float = 30.0) -> InfluxDB:
        binary = shutil.which("influxd") or "/usr/bin/influxd"
        if not Path(binary).exists():
            raise RuntimeError("influxd is not installed (apt-get install influxdb)")
        config = self.write_config()
        self._spawn([binary, "-config", str(config)], timeout)
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError, urllib.error.URLError),
                urllib.request.urlopen(f"{self.url}/ping", timeout=1) as resp,
            ):
                if resp.status == 204:
                    return
            time.sleep(0.1)
        raise TimeoutError(f"InfluxDB at {self.url} not ready; log:\n{_tail(self.log_path)}")

    def query(self, q: str, db: str | None = None) -> dict:
        import json

        params = {"q": q, "epoch": "ns"}
        if db:
            params["db"] = db
        data = urllib.parse.urlencode(params).encode()
        with urllib.request.urlopen(f"{self.url}/query", data=data, timeout=10) as resp:
            return json.loads(resp.read())

    def create_database(self, name: str) -> None:
        self.query(f'CREATE DATABASE "{name}"')

    def drop_database(self, name: str) -> None:
        self.query(f'DROP DATABASE "{name}"')

    def points(self, q: str, db: str) -> list[dict]:
        """Rows of a query as dicts (column -> value), all series concatenated."""
        rows: list[dict] = []
        for result in self.query(q, db).get("results", []):
            if "error" in result:
                raise RuntimeError(f"InfluxDB query {q!r} failed: {result['error']}")
            for series in result.get("series", []):
                tags = series.get("tags", {})
                for values in series["values"]:
                    rows.append({**tags, **dict(zip(series["columns"], values, strict=True))})
        return rows
