"""The YAML config of a server under test, every knob a test or bench turns as an argument."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from gridsense_devtools.ports import free_port

# The tests use fixed device times (2024) so timestamps can be asserted exactly; with the default
# late_after_s every such incident would be "backfilled". Tests of late incidents set it.
TEN_YEARS_S = 10 * 365 * 86400


def write_server_config(
    folder: Path,
    *,
    mqtt_port: int,
    influx_url: str,
    database: str,
    db_url: str = "sqlite:///./state/server.db",
    registry: str | None = "registry.yaml",
    http_port: int = 0,
    batch_size: int = 5000,
    flush_interval_s: float = 0.2,
    client_id: str = "gridsense-server-test",
    late_after_s: float = TEN_YEARS_S,
    shared: bool = False,
    spool_max_mb: float = 64,
    spool_after_s: float = 1.0,
    ingest: dict[str, float] | None = None,
    auth_yaml: str = "",
    audit: dict[str, float] | None = None,
    extra_yaml: str = "",
    local_port: int | None = None,
    http: dict[str, Any] | None = None,
    public_url: str | None = None,
    lifecycle: dict[str, object] | None = None,
    timeseries: dict[str, Any] | None = None,
) -> Path:
    """``auth_yaml``: more keys under ``auth:`` in flow style, e.g.
    ``sessions: {idle_s: 2}``; ``extra_yaml``: more top-level sections, as YAML text (e.g.
    ``lifecycle:``; not with ``lifecycle`` or ``public_url``, which write that section).
    ``local_port``: the
    local-only listener that serves /healthz with its counters; by default any free port when
    ``http_port`` is 0 (in-process servers read ``local_url``), else a free port chosen here
    (``local_url_of`` reads it back from the file). ``timeseries``: more keys of the store's
    section (``kind``, ``org``, ``token_file``, ...)."""
    if local_port is None:
        local_port = free_port() if http_port else 0
    registry_block = f"registry:\n  file: {registry}\n" if registry else ""
    lifecycle_block = _block("lifecycle", {**(lifecycle or {}),
                                           **({"public_url": public_url} if public_url else {})})
    path = folder / "server.yaml"
    path.write_text(
        f"""\
mqtt:
  host: 127.0.0.1
  port: {mqtt_port}
  client_id: {client_id}
  share_group: gridsense-server
  shared: {str(shared).lower()}
timeseries:
  url: {influx_url}
  database: {database}
  batch_size: {batch_size}
  flush_interval_s: {flush_interval_s}
  spool_max_mb: {spool_max_mb}
  spool_after_s: {spool_after_s}
{_entries(timeseries)}database:
  url: {db_url}
{registry_block}http:
  host: 127.0.0.1
  port: {http_port}
  local_port: {local_port}
{_entries(http)}auth:
  token_ttl_s: 3600
{"  " + auth_yaml.strip().replace(chr(10), chr(10) + "  ") + chr(10) if auth_yaml else ""}incidents:
  late_after_s: {late_after_s}
{_block("ingest", ingest)}{_block("audit", audit)}{lifecycle_block}{extra_yaml}""",
        encoding="utf-8",
    )
    return path


def _block(name: str, values: dict[str, Any] | None) -> str:
    return f"{name}:\n{_entries(values)}" if values else ""


def _entries(values: dict[str, Any] | None) -> str:
    """Keys of a section, values in JSON (which YAML reads as flow style)."""
    return "".join(f"  {key}: {json.dumps(value, default=str)}\n"
                   for key, value in (values or {}).items())


def local_url_of(config: Path) -> str | None:
    """The local-only listener's base URL a server config names (where /healthz has every
    counter), or None when it has none."""
    http = (yaml.safe_load(config.read_text(encoding="utf-8")) or {}).get("http") or {}
    port = http.get("local_port")
    return f"http://127.0.0.1:{port}" if port else None
