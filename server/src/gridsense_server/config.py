"""The server's config file (``server.yaml``): one typed tree, validated at start-up.

Unknown keys are errors (a misspelt key must not be silently ignored) and every error names
``file:line: key.path``. Relative paths resolve against the config file's folder, so a config
works the same whatever the current directory is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from gridsense_protocol.yamlconfig import ConfigError, load_yaml_file

from .escalation.policy import LifecycleConfig

Port = Annotated[int, Field(ge=1, le=65535)]
HttpPort = Annotated[int, Field(ge=0, le=65535)]  # 0: any free port (tests)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MqttConfig(_Strict):
    host: str = "127.0.0.1"
    port: Port = 1883
    client_id: Annotated[str, Field(min_length=1, max_length=128)] = "gridsense-server-1"
    share_group: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.\-]{1,64}$")] = "gridsense-server"
    username: str | None = None
    password_file: Path | None = None
    # Plain subscriptions by default: Mosquitto 2.0 does not restore the shared subscriptions
    # of an offline session after a broker restart (messages published before the server
    # reconnects are then dropped), and it queues a share group's messages for members that
    # are offline. Shared subscriptions are for several server processes splitting the load.
    shared: bool = False
    # How long the broker keeps the server's session (and queues its messages) while it is
    # down. Mosquitto's persistence and max_queued_messages decide what survives beyond that.
    session_expiry_s: Annotated[int, Field(ge=0, le=0xFFFFFFFF)] = 7 * 86400
    # Unacknowledged messages the broker may send per session: the in-flight bound (memory)
    # and, as acks follow durable effects, the backpressure on ingest.
    receive_maximum: Annotated[int, Field(ge=1, le=65535)] = 1000


class InfluxConfig(_Strict):
    url: Annotated[str, Field(pattern=r"^https?://")] = "http://127.0.0.1:8086"
    database: Annotated[str, Field(pattern=r"^[A-Za-z0-9_\-]{1,64}$")] = "gridsense"
    batch_size: Annotated[int, Field(ge=1, le=100_000)] = 5000
    flush_interval_s: Annotated[float, Field(gt=0, le=60)] = 1.0
    # Readings InfluxDB has not taken within spool_after_s go to this disk spool (and are then
    # acknowledged to the broker); written to InfluxDB, in order, when it answers again.
    spool_dir: Path | None = None  # default: <state folder>/spool
    spool_max_mb: Annotated[float, Field(ge=0)] = 1024  # 0: no spool (ack only once written)
    spool_after_s: Annotated[float, Field(gt=0, le=600)] = 1.0

    @field_validator("url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")


class DatabaseConfig(_Strict):
    url: str = "sqlite:///./state/server.db"

    @field_validator("url")
    @classmethod
    def _parsable(cls, value: str) -> str:
        try:
            url = make_url(value)
        except ArgumentError as exc:
            raise ValueError(f"not a database URL: {exc}") from None
        if url.get_backend_name() not in ("sqlite", "postgresql"):
            raise ValueError("only sqlite:/// and postgresql+psycopg:// URLs are supported")
        return value


class RegistryConfig(_Strict):
    file: Path | None = None


class HttpConfig(_Strict):
    host: str = "127.0.0.1"
    port: HttpPort = 8080


class AuthConfig(_Strict):
    token_ttl_s: Annotated[int, Field(ge=60, le=30 * 86400)] = 43200
    secret_file: Path | None = None


class IncidentsConfig(_Strict):
    # An incident event older than this on arrival (device time; e.g. replayed after an
    # outage) is recorded as backfilled: shown to control, never paged to a worker as new.
    late_after_s: Annotated[float, Field(gt=0)] = 300


class SnapshotsConfig(_Strict):
    """Incident JPEGs (snapshots.py): files under ``dir``, the oldest evicted at the cap."""

    dir: Path | None = None  # default: <state folder>/snapshots
    max_mb: Annotated[float, Field(gt=0, le=1_000_000)] = 2048


class ServerConfig(_Strict):
    mqtt: MqttConfig = MqttConfig()
    influxdb: InfluxConfig = InfluxConfig()
    database: DatabaseConfig = DatabaseConfig()
    registry: RegistryConfig = RegistryConfig()
    http: HttpConfig = HttpConfig()
    auth: AuthConfig = AuthConfig()
    incidents: IncidentsConfig = IncidentsConfig()
    lifecycle: LifecycleConfig = LifecycleConfig()  # SLA clocks, escalation, channels
    snapshots: SnapshotsConfig = SnapshotsConfig()
    # Not a file key: the folder relative paths were resolved against (the config's folder).
    _base_dir: Path = PrivateAttr(default_factory=Path.cwd)

    @property
    def base_dir(self) -> Path:
        return self._base_dir

    @property
    def state_dir(self) -> Path:
        """Where the server keeps what it generates (the token secret): next to the config."""
        return self.base_dir / "state"

    @property
    def spool_dir(self) -> Path | None:
        """The InfluxDB spool folder, or None when the spool is off (spool_max_mb: 0)."""
        if self.influxdb.spool_max_mb <= 0:
            return None
        return self.influxdb.spool_dir or self.state_dir / "spool"

    @property
    def snapshot_dir(self) -> Path:
        return self.snapshots.dir or self.state_dir / "snapshots"

    def resolved(self, base_dir: Path) -> ServerConfig:
        """A copy with every relative path (and relative SQLite path) made absolute."""
        base = base_dir.resolve()

        def absolute(path: Path | None) -> Path | None:
            return None if path is None else (path if path.is_absolute() else base / path)

        copy = self.model_copy(
            update={
                "mqtt": self.mqtt.model_copy(
                    update={"password_file": absolute(self.mqtt.password_file)}
                ),
                "influxdb": self.influxdb.model_copy(
                    update={"spool_dir": absolute(self.influxdb.spool_dir)}
                ),
                "database": DatabaseConfig(url=resolve_sqlite_url(self.database.url, base)),
                "registry": RegistryConfig(file=absolute(self.registry.file)),
                "snapshots": self.snapshots.model_copy(
                    update={"dir": absolute(self.snapshots.dir)}
                ),
                "auth": self.auth.model_copy(
                    update={"secret_file": absolute(self.auth.secret_file)}
                ),
            }
        )
        copy._base_dir = base
        return copy


def resolve_sqlite_url(url: str, base: Path) -> str:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return url
    database = parsed.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return url
    path = Path(database)
    if path.is_absolute():
        return url
    return parsed.set(database=str((base / path).resolve())).render_as_string(hide_password=False)


def load_server_config(path: Path) -> ServerConfig:
    """Read and validate ``path``; raises gridsense_protocol.yamlconfig.ConfigError."""
    config = load_yaml_file(path, ServerConfig).resolved(path.resolve().parent)
    password_file = config.mqtt.password_file
    if password_file is not None and not password_file.is_file():
        raise ConfigError(str(path), [("mqtt.password_file", None,
                                       f"{password_file} does not exist")])
    return config
