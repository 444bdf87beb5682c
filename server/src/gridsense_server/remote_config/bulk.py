"""One change to every gateway of a community, gateway by gateway: each new version must be
reported applied before the next gateway gets its own, and the first failure pauses the rest.

A change is a path into the config document and a value: ``rules[type=over_temperature].
threshold`` (every rule of that type), ``devices[0].poll_interval_s``, ``health.interval_s``.
"""

from __future__ import annotations

import copy
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from ..registry.grids import gateways_of
from .validate import InvalidConfig
from .versions import Unchanged, create_version, latest, status

_STEP = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]|\[([A-Za-z_]+)=([^\]]+)\]|\.")
POLL_S = 0.5


class PathError(ValueError):
    """A change path that does not lead anywhere in a gateway's document."""


def _steps(path: str) -> list[Any]:
    steps: list[Any] = []
    at = 0
    while at < len(path):
        match = _STEP.match(path, at)
        if match is None:
            raise PathError(f"{path!r}: cannot read from character {at + 1}")
        key, index, field_name, wanted = match.groups()
        if key is not None:
            steps.append(key)
        elif index is not None:
            steps.append(int(index))
        elif field_name is not None:
            steps.append((field_name, wanted))
        at = match.end()
    if not steps or not isinstance(steps[-1], str):
        raise PathError(f"{path!r}: must end with a key")
    return steps


def split_change(change: str) -> tuple[str, str]:
    """``PATH=VALUE`` at the first ``=`` outside brackets (a selector has one of its own)."""
    depth = 0
    for at, char in enumerate(change):
        depth += {"[": 1, "]": -1}.get(char, 0)
        if char == "=" and depth == 0:
            return change[:at].strip(), change[at + 1:]
    raise PathError(f"{change!r}: expected PATH=VALUE")


def set_value(document: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of ``document`` with ``value`` at ``path`` (at every match of a selector)."""
    out = copy.deepcopy(document)
    targets: list[Any] = [out]
    steps = _steps(path)
    for step in steps[:-1]:
        following: list[Any] = []
        for node in targets:
            if isinstance(step, str) and isinstance(node, dict):
                following.append(node.setdefault(step, {}))
            elif isinstance(step, int) and isinstance(node, list) and step < len(node):
                following.append(node[step])
            elif isinstance(step, tuple) and isinstance(node, list):
                following.extend(n for n in node
                                 if isinstance(n, dict) and str(n.get(step[0])) == step[1])
        targets = following
    if not targets:
        raise PathError(f"{path!r} matches nothing in this gateway's config")
    for node in targets:
        if not isinstance(node, dict):
            raise PathError(f"{path!r} leads to a {type(node).__name__}, not a mapping")
        node[steps[-1]] = value
    return out


@dataclass
class BulkReport:
    community: str
    done: list[dict[str, Any]] = field(default_factory=list)
    paused_at: str | None = None  # the gateway that failed; the rest were not touched
    reason: str | None = None
    left: list[str] = field(default_factory=list)


def bulk_change(factory: sessionmaker[Session], community: str, path: str, value: Any,
                author: str, reason: str, timeout_s: float,
                on_version: Callable[[], None] | None = None,
                clock: Callable[[], float] = time.monotonic) -> BulkReport:
    """Blocking: waits for each gateway's report before the next."""
    with factory() as session:
        gateways = gateways_of(session, community)
    report = BulkReport(community)
    for position, gateway in enumerate(gateways):
        outcome = _one(factory, gateway, path, value, author, reason, timeout_s, on_version,
                       clock)
        report.done.append({"gateway": gateway, **outcome})
        if outcome["state"] not in ("applied", "unchanged"):
            report.paused_at, report.reason = gateway, outcome.get("reason")
            report.left = gateways[position + 1:]
            break
    return report


def _one(factory: sessionmaker[Session], gateway: str, path: str, value: Any, author: str,
         reason: str, timeout_s: float, on_version: Callable[[], None] | None,
         clock: Callable[[], float]) -> dict[str, Any]:
    try:
        with factory.begin() as session:
            current = latest(session, gateway)
            if current is None:
                return {"state": "no_config", "reason": "no config version on the server yet "
                        "(gridsense-server config set first)"}
            row = create_version(session, gateway, set_value(current.document, path, value),
                                 author, f"{reason} (bulk {path})")
            version = row.version
    except Unchanged:
        return {"state": "unchanged"}
    except (PathError, InvalidConfig) as exc:
        return {"state": "invalid", "reason": str(exc)}
    if on_version is not None:
        on_version()
    deadline = clock() + timeout_s
    while clock() < deadline:
        with factory() as session:
            seen = status(session, gateway)
        if seen.last_version == version and seen.last_state is not None:
            return {"state": seen.last_state, "version": version, "reason": seen.last_reason}
        time.sleep(POLL_S)
    return {"state": "no_answer", "version": version,
            "reason": f"no report from {gateway} within {timeout_s:g} s"}
