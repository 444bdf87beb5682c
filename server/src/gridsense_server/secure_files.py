"""Files only their owner may read: secrets and keys are created 0600 and refused when group- or
world-readable; the database and certificates are created 0600 (or 0644 for a certificate) and
only warned about, since a wrong mode there exposes data, not an identity.

The wording is the one the gateway uses for its OSDP keys, so an installer reads one sentence
whatever file it is about.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from sqlalchemy.engine import make_url

from .logs import kv

log = logging.getLogger(__name__)

PRIVATE = 0o600
_OTHERS = stat.S_IRWXG | stat.S_IRWXO


class FileProblem(ValueError):
    """A file the server needs (a secret, a key, a certificate) cannot be used as it is; the
    message names the file and what to do. The CLI prints it and exits with the config code."""


class InsecureFileError(FileProblem):
    """A secret or key others can read; the message names the file and the fix."""


def readable_by_others(path: Path) -> int | None:
    """The file's mode when group or others have any access to it, else None (or missing)."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return None
    return mode & 0o777 if mode & _OTHERS else None


def _problem(path: Path, mode: int) -> str:
    return f"{path} is readable by group or others (mode {oct(mode)}); run: chmod 600 {path}"


def check_private(path: Path) -> None:
    """Refuse a secret or private key that others can read: it would no longer be a secret."""
    mode = readable_by_others(path)
    if mode is not None:
        raise InsecureFileError(_problem(path, mode))


def warn_if_exposed(path: Path, what: str) -> bool:
    """Log a warning (once per call) when ``path`` is group- or world-readable; True if so."""
    mode = readable_by_others(path)
    if mode is None:
        return False
    log.warning(kv("file_readable_by_others", file=str(path), what=what, mode=oct(mode),
                   fix=f"chmod 600 {path}"))
    return True


def write_private(path: Path, data: bytes, mode: int = PRIVATE) -> None:
    """Write ``data`` to ``path`` atomically, created 0600 (never readable by others, even for a
    moment: the mode is set when the file is created, not afterwards). ``mode`` 0o644 for what
    is public by design (a CA certificate)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(tmp, mode)  # the umask may have taken bits away from a public file
    os.replace(tmp, path)


def create_private_if_missing(path: Path) -> bool:
    """Create an empty 0600 file unless one exists (SQLite then keeps that mode and gives its
    -wal and -shm files the same); True when created."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE)
    except FileExistsError:
        return False
    os.close(fd)
    return True


def prepare_database_file(url: str) -> None:
    """For a file-backed SQLite URL, prepare its file (below); other databases are left alone."""
    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() == "sqlite" and database and database != ":memory:" \
            and not database.startswith("file:"):
        prepare_sqlite_file(Path(database))


def prepare_sqlite_file(path: Path) -> None:
    """The server database: created 0600; an existing one (or its -wal/-shm) that others can
    read is warned about, not refused (refusing would stop the server over a backup's chmod)."""
    if create_private_if_missing(path):
        return
    for candidate in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        warn_if_exposed(candidate, "the server database")
