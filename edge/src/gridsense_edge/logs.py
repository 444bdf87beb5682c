"""Structured logs: one line per event, ``key=value`` pairs, the ids first."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any, TextIO

_FIELDS_ATTR = "gridsense_fields"
# Fields printed first, in this order, when present: the ids that let you follow a message.
_ID_ORDER = ("gateway", "point", "bus", "device", "event_id", "seq")


def _quote(value: Any) -> str:
    text = value if isinstance(value, str) else str(value)
    if text == "" or any(c in text for c in ' ="\n\t'):
        text = '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return text


class KeyValueFormatter(logging.Formatter):
    """``ts=... level=... logger=... event=... gateway=... k=v`` on one line."""

    def __init__(self, static_fields: dict[str, str] | None = None) -> None:
        super().__init__()
        self.static_fields = dict(static_fields or {})

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = dict(self.static_fields)
        fields.update(getattr(record, _FIELDS_ATTR, {}))
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        parts = [
            f"ts={stamp}.{int(record.msecs):03d}Z",
            f"level={record.levelname.lower()}",
            f"logger={record.name}",
            f"event={_quote(record.getMessage())}",
        ]
        for key in _ID_ORDER:
            if key in fields:
                parts.append(f"{key}={_quote(fields.pop(key))}")
        parts.extend(f"{key}={_quote(value)}" for key, value in fields.items() if value is not None)
        if record.exc_info:
            parts.append(f"exc={_quote(self.formatException(record.exc_info))}")
        return " ".join(parts)


def configure_logging(level: str = "INFO", stream: TextIO | None = None) -> KeyValueFormatter:
    """Route every logger (ours and the libraries') through the key=value formatter."""
    handler = logging.StreamHandler(stream or sys.stderr)
    formatter = KeyValueFormatter()
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # pymodbus logs every timeout at ERROR; our drivers log state changes with ids instead.
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    return formatter


def set_static_field(key: str, value: str) -> None:
    """Stamp ``key=value`` on every following line (e.g. the gateway id)."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler.formatter, KeyValueFormatter):
            handler.formatter.static_fields[key] = value


def log_event(
    logger: logging.Logger,
    event: str,
    level: int = logging.INFO,
    exc_info: BaseException | None = None,
    **fields: Any,
) -> None:
    if logger.isEnabledFor(level):
        logger.log(level, event, exc_info=exc_info, extra={_FIELDS_ATTR: fields}, stacklevel=2)
