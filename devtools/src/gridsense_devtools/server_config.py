"""The YAML config of a server under test, every knob a test or bench turns as an argument."""

from __future__ import annotations

from pathlib import Path

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
    lifecycle: dict[str, object] | None = None,
) -> Path:
    """``auth_yaml``: more keys under ``auth:`` in flow style, e.g.
    ``sessions: {idle_s: 2}``."""
    registry_block = f"registry:\n  file: {registry}\n" if registry else ""
    path = folder / "server.yaml"
    path.write_text(
        f"""\
mqtt:
  host: 127.0.0.1
  port: {mqtt_port}
  client_id: {client_id}
  share_group: gridsense-server
  shared: {str(shared).lower()}
influxdb:
  url: {influx_url}
  database: {database}
  batch_size: {batch_size}
  flush_interval_s: {flush_interval_s}
  spool_max_mb: {spool_max_mb}
  spool_after_s: {spool_after_s}
database:
  url: {db_url}
{registry_block}http:
  host: 127.0.0.1
  port: {http_port}
auth:
  token_ttl_s: 3600
{"  " + auth_yaml.strip().replace(chr(10), chr(10) + "  ") + chr(10) if auth_yaml else ""}incidents:
  late_after_s: {late_after_s}
{_block("ingest", ingest)}{_block("audit", audit)}{_block("lifecycle", lifecycle)}""",
        encoding="utf-8",
    )
    return path


def _block(name: str, values: dict[str, float] | dict[str, object] | None) -> str:
    if not values:
        return ""
    return f"{name}:\n" + "".join(f"  {key}: {value}\n" for key, value in values.items())
