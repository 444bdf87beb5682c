"""The gateway config (``gridsense-edge run --config gateway.yaml``), validated as one tree."""

from __future__ import annotations

import fnmatch
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)

from gridsense_protocol.tls import ClientTls, TlsFileError, check_private_file, client_context
from gridsense_protocol.yamlconfig import ConfigError, load_yaml_file

from .configtypes import (
    BASE_DIR,
    BUS_IDS,
    PROFILES_DIR,
    STATE_DIR,
    Identifier,
    ResolvedPath,
    context_of,
    default_profiles_dir,
)
from .drivers import DRIVERS, DeviceConfigBase
from .drivers.modbus.bus import BusConfig
from .rules import RULES, RuleConfigBase

__all__ = ["ConfigError", "GatewayConfig", "load_config"]



class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GatewaySection(_Section):
    id: Identifier  # also the MQTT client id and username
    state_dir: ResolvedPath

    @field_validator("state_dir")
    @classmethod
    def _share_state_dir(cls, value: Path, info: ValidationInfo) -> Path:
        context_of(info)[STATE_DIR] = value  # rules and drivers keep their state under it
        return value


class MqttTlsSection(_Section):
    """TLS to the broker: its certificate must chain to ``ca_file`` and name the host (or
    ``server_name`` when the host is an address the certificate does not carry)."""

    ca_file: ResolvedPath
    cert_file: ResolvedPath | None = None  # a client certificate (CN = this gateway's id)
    key_file: ResolvedPath | None = None  # mode 0600
    server_name: Annotated[str, Field(min_length=1, max_length=253)] | None = None

    @model_validator(mode="after")
    def _usable(self) -> MqttTlsSection:
        self.context()  # a bad CA or key fails at check-config, not at the first connect
        return self

    def context(self) -> ClientTls:
        try:
            return client_context(self.ca_file, self.cert_file, self.key_file, self.server_name)
        except TlsFileError as exc:
            raise ValueError(str(exc)) from None


class MqttSection(_Section):
    host: Annotated[str, Field(min_length=1)] = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 1883
    password_file: ResolvedPath | None = None
    keepalive_s: Annotated[int, Field(ge=5, le=3600)] = 30
    # Outbox messages handed to the broker without a PUBACK yet; lowered to the broker's
    # Receive Maximum when that is smaller.
    max_inflight: Annotated[int, Field(ge=1, le=1000)] = 200
    # Longest wait between reconnect attempts (exponential backoff from 1 s, jittered 50-100 %).
    reconnect_max_s: Annotated[float, Field(ge=1, le=600)] = 30.0
    # When a message leaves the outbox. auto: once the server has confirmed anything (it
    # publishes settled sequence ranges on this gateway's ack topic), only on its word; until
    # then, and with ``broker`` (a server older than that), on the broker's PUBACK.
    acknowledgement: Literal["auto", "server", "broker"] = "auto"
    # Unconfirmed this long after the PUBACK: sent again (doubling per attempt up to the max,
    # jittered 50-100 %). At most ``max_unconfirmed`` wait; then new messages wait on disk.
    confirm_timeout_s: Annotated[float, Field(ge=0.5, le=3600)] = 20.0
    confirm_timeout_max_s: Annotated[float, Field(ge=1, le=86400)] = 300.0
    max_unconfirmed: Annotated[int, Field(ge=10, le=100_000)] = 5000
    tls: MqttTlsSection | None = None  # None: plain MQTT (loopback only)
    # The MQTT version spoken: 5, or 3.1.1 for brokers without 5 (nats-server's MQTT
    # listener). With 3.1.1 the session is persistent (clean session off) and the window is
    # max_inflight (3.1.1 has no Receive Maximum to lower it).
    protocol: Literal["5", "3.1.1"] = "5"

    @field_validator("protocol", mode="before")
    @classmethod
    def _protocol_text(cls, value: object) -> object:
        return str(value) if isinstance(value, int | float) else value  # YAML reads 5 as a number

    @field_validator("password_file")
    @classmethod
    def _readable(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"{value} is not a file (it should hold this gateway's password)")
        if value is not None:
            try:
                check_private_file(value)  # a password others can read is no longer a secret
            except TlsFileError as exc:
                raise ValueError(str(exc)) from None
        return value


class HealthSection(_Section):
    interval_s: Annotated[float, Field(ge=1, le=86400)] = 30.0


class MetricsSection(_Section):
    # /metrics (Prometheus text) on 127.0.0.1:port; None: off. Loopback only: a scraper on the
    # gateway (or a tunnel) reads it; nothing on the LAN can.
    port: Annotated[int, Field(ge=0, le=65535)] | None = None


class OutboxSection(_Section):
    """Caps of the durable outbox (``state_dir/outbox.db``); transport/outbox.py has the policy."""

    max_mb: Annotated[float, Field(gt=0, le=1_000_000)] = 256.0  # bulk lane (telemetry, health)
    max_age_h: Annotated[float, Field(gt=0, le=24 * 366)] = 72.0  # bulk rows older are dropped
    incident_max_mb: Annotated[float, Field(gt=0, le=1_000_000)] = 32.0
    min_free_disk_mb: Annotated[float, Field(ge=0, le=1_000_000)] = 100.0  # below: bulk sheds


class RemoteConfigSection(_Section):
    """Remote configuration (reconfig/): how long a pushed version has to prove itself healthy
    (its drivers answering, the broker reachable, the outbox draining) before it is kept."""

    health_window_s: Annotated[float, Field(ge=1, le=600)] = 30.0


class GatewayConfig(_Section):
    # Field order matters: profiles_dir and buses are validated (and put in the context)
    # before devices, whose entries are checked against them.
    gateway: GatewaySection
    mqtt: MqttSection = MqttSection()
    health: HealthSection = HealthSection()
    outbox: OutboxSection = OutboxSection()
    metrics: MetricsSection = MetricsSection()
    remote: RemoteConfigSection = RemoteConfigSection()
    profiles_dir: Annotated[ResolvedPath | None, Field(validate_default=True)] = None
    buses: Annotated[list[BusConfig], Field(validate_default=True)] = []
    # Typed per document by ``model_for``: the union of the driver (rule) types it names.
    devices: list[DeviceConfigBase] = []
    rules: list[RuleConfigBase] = []

    _source: Path | None = PrivateAttr(default=None)

    @classmethod
    def model_validate(cls, obj: Any, *args: Any, **kwargs: Any) -> GatewayConfig:
        model = model_for(obj) if cls is GatewayConfig else cls
        return super(GatewayConfig, model).model_validate(obj, *args, **kwargs)

    @classmethod
    def model_json_schema(cls, *args: Any, **kwargs: Any) -> dict[str, Any]:
        model = _model(None, None) if cls is GatewayConfig else cls
        return super(GatewayConfig, model).model_json_schema(*args, **kwargs)

    @field_validator("profiles_dir")
    @classmethod
    def _profiles_dir(cls, value: Path | None, info: ValidationInfo) -> Path:
        folder = value if value is not None else default_profiles_dir()
        if not folder.is_dir():
            raise ValueError(f"{folder} is not a folder")
        context_of(info)[PROFILES_DIR] = folder
        return folder

    @field_validator("buses")
    @classmethod
    def _bus_ids(cls, value: list[BusConfig], info: ValidationInfo) -> list[BusConfig]:
        ids = [bus.id for bus in value]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"bus id {duplicates[0]!r} is defined twice")
        ports = [bus.port for bus in value]
        shared = sorted({p for p in ports if ports.count(p) > 1})
        if shared:
            raise ValueError(f"port {shared[0]} is used by two buses (one owner per port)")
        context_of(info)[BUS_IDS] = set(ids)
        return value

    @model_validator(mode="after")
    def _devices_among_each_other(self) -> GatewayConfig:
        """Checks a device makes against the others (a scanner names a reader's door)."""
        for i, device in enumerate(self.devices):
            check = getattr(device, "check_among", None)
            problem = check(self.devices) if check is not None else None
            if problem:
                raise ValueError(f"devices[{i}] ({device.point}): {problem}")
        return self

    @property
    def profiles_folder(self) -> Path:
        return self.profiles_dir or default_profiles_dir()

    @property
    def source(self) -> Path | None:
        return self._source

    def bus_map(self) -> dict[str, BusConfig]:
        return {bus.id: bus for bus in self.buses}

    def warnings(self) -> list[str]:
        """Legal but suspicious: a rule whose point globs match no device."""
        points = [d.point for d in self.devices]
        out = []
        for i, rule in enumerate(self.rules):
            if not any(fnmatch.fnmatchcase(p, g) for p in points for g in rule.points):
                out.append(f"rules[{i}] ({rule.type}): points {rule.points} match no device")
        return out

    def summary(self) -> dict[str, Any]:
        return {
            "source": str(self._source) if self._source else None,
            "gateway": self.gateway.id,
            "state_dir": str(self.gateway.state_dir),
            "mqtt": f"{self.mqtt.host}:{self.mqtt.port}",
            "mqtt_tls": str(self.mqtt.tls.ca_file) if self.mqtt.tls else None,
            "outbox": self.outbox.model_dump(),
            "password_file": str(self.mqtt.password_file) if self.mqtt.password_file else None,
            "profiles_dir": str(self.profiles_folder),
            "buses": [{"id": b.id, "port": b.port} for b in self.buses],
            "devices": [
                {"point": d.point, "type": d.type, **({"bus": d.bus} if hasattr(d, "bus") else {})}
                for d in self.devices
            ],
            "rules": [{"type": r.type, "points": r.points} for r in self.rules],
            "warnings": self.warnings(),
        }


def _types(document: Any, key: str) -> frozenset[str]:
    entries = document.get(key) if isinstance(document, dict) else None
    if not isinstance(entries, list):
        return frozenset()
    return frozenset(e["type"] for e in entries if isinstance(e, dict)
                     and isinstance(e.get("type"), str))


def model_for(document: Any) -> type[GatewayConfig]:
    """The config model for this document: only the drivers and rules it names are imported
    and built (a temperature gateway holds neither the camera's nor the door reader's)."""
    return _model(_types(document, "devices"), _types(document, "rules"))


@cache
def _model(devices: frozenset[str] | None, rules: frozenset[str] | None) -> type[GatewayConfig]:
    """None: every type (the JSON Schema the server validates pushed versions with)."""
    device_config = DRIVERS.config_union(devices)
    rule_config = RULES.config_union(rules)
    return create_model(  # type: ignore[no-any-return]
        "GatewayConfig", __base__=GatewayConfig, __module__=__name__,
        devices=(list[device_config], []),  # type: ignore[valid-type]
        rules=(list[rule_config], []),  # type: ignore[valid-type]
    )


def load_config(path: Path | str) -> GatewayConfig:
    """Read and validate; raises ConfigError (``file:line: key.path: problem``)."""
    path = Path(path)
    context: dict[str, Any] = {BASE_DIR: path.absolute().parent}
    config = load_yaml_file(path, GatewayConfig, context=context)
    config._source = path
    return config
