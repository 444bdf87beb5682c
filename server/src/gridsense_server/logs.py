"""Structured logs: one line per event, ``key=value`` pairs after the event name.

Call sites write ``log.info(kv("incident_opened", incident=..., point=...))`` so every line can
be grepped by event name and followed by its ids (gateway, point, event id).
"""

from __future__ import annotations

import logging
import sys
from typing import Any

_QUOTE_NEEDED = frozenset(' ="\n\t')


def _format_value(value: Any) -> str:
    text = str(value)
    if text == "" or any(ch in _QUOTE_NEEDED for ch in text):
        escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'"{escaped}"'
    return text


def kv(event: str, /, **fields: Any) -> str:
    """``event key=value ...``; None values are left out to keep lines short."""
    parts = [event]
    parts.extend(f"{k}={_format_value(v)}" for k, v in fields.items() if v is not None)
    return " ".join(parts)


class KeyValueFormatter(logging.Formatter):
    """``ts=... level=... logger=... <message>``; a traceback, if any, stays on one line."""

    def format(self, record: logging.LogRecord) -> str:
        ts = self.formatTime(record, "%Y-%m-%dT%H:%M:%S")
        line = (
            f"ts={ts}.{int(record.msecs):03d} level={record.levelname.lower()} "
            f"logger={record.name} {record.getMessage()}"
        )
        if record.exc_info:
            line += " exc=" + _format_value(self.formatException(record.exc_info))
        return line


class _CurrentStderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time of the record, not at set-up: a
    replaced stderr (a test's capture, a daemon's redirect) may be closed by then."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def setup_logging(level: str = "INFO") -> None:
    handler = _CurrentStderrHandler(sys.stderr)
    handler.setFormatter(KeyValueFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # paho logs through our own callbacks; httpx logs every request at INFO.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
