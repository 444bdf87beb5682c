"""The server's config file (``server.yaml``): one typed tree, validated at start-up.

Unknown keys are errors (a misspelt key must not be silently ignored) and every error names
``file:line: key.path``. Relative paths resolve against the config file's folder, so a config
works the same whatever the current directory is.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    field_validator,
    model_validator,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from gridsense_protocol.tls import ClientTls, TlsFileError, client_context
from gridsense_protocol.yamlconfig import ConfigError, load_yaml_file

from .secure_files import InsecureFileError, check_private

Port = Annotated[int, Field(ge=1, le=65535)]
HttpPort = Annotated[int, Field(ge=0, le=65535)]  # 0: any free port (tests)


def _known_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r}") from None
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# The ``lifecycle:`` section: SLA clocks, escalation policies, channels. A policy is data:
# ordered steps (an offset from the moment the incident started waiting for acceptance, whom
# to page — a role relative to the point's grid — and on which channels), repeated ``repeat``
# more times every ``repeat_every_s`` while nobody accepts; after acceptance a reminder to the
# handler when they go quiet, and un-accept plus re-escalation when they stay quiet. The first
# policy whose ``types``/``severities`` match an incident applies.
BUSY_SHARE = 0.25  # a pass runs at most a quarter of each tick
Target = Literal["workers", "leader", "duty_officer", "command_centre", "control"]
Severity = Literal["minor", "major", "critical"]
Seconds = Annotated[float, Field(ge=0)]
# "app" is the WebSocket stream; "group:<name>" a grid's group robot; any other name one of
# the person's own contacts (registry staff ``contacts:``).
ChannelName = Annotated[str, Field(pattern=r"^(app|group:[a-z0-9_]{1,24}|[a-z0-9_]{1,24})$")]


class StepSpec(_Strict):
    after_s: Seconds
    notify: Annotated[list[Target], Field(min_length=1)]
    channels: Annotated[list[ChannelName], Field(min_length=1)] = ["app"]


class PolicySpec(_Strict):
    types: list[str] = []  # empty: every type
    severities: list[Severity] = []  # empty: every severity
    steps: Annotated[list[StepSpec], Field(min_length=1)]
    repeat: Annotated[int, Field(ge=0, le=100)] = 0
    repeat_every_s: Annotated[float, Field(gt=0)] = 900
    # After acceptance: remind the handler after this long without activity, and un-accept
    # (back to new, escalated again) after this long. None: never.
    remind_after_s: Annotated[float, Field(gt=0)] | None = 3600
    unaccept_after_s: Annotated[float, Field(gt=0)] | None = 7200
    quiet_channels: Annotated[list[ChannelName], Field(min_length=1)] = ["app"]

    @model_validator(mode="after")
    def _ordered(self) -> PolicySpec:
        offsets = [step.after_s for step in self.steps]
        if offsets != sorted(offsets):
            raise ValueError("steps must be in order of after_s")
        if self.repeat and self.repeat_every_s <= offsets[-1]:
            raise ValueError("repeat_every_s must be longer than the last step's after_s")
        return self

    def matches(self, type_: str, severity: str) -> bool:
        return ((not self.types or type_ in self.types)
                and (not self.severities or severity in self.severities))


class SlaRule(_Strict):
    types: list[str] = []
    severities: list[Severity] = []
    accept_s: Annotated[float, Field(gt=0)] | None = None
    resolve_s: Annotated[float, Field(gt=0)] | None = None


class SlaSpec(_Strict):
    accept_s: Annotated[float, Field(gt=0)] = 300  # acceptance within 5 minutes
    resolve_s: Annotated[float, Field(gt=0)] = 3 * 3600  # done within about 3 hours
    rules: list[SlaRule] = []  # first match overrides the defaults, per field

    def deadlines(self, type_: str, severity: str) -> tuple[float, float]:
        accept, resolve = self.accept_s, self.resolve_s
        for rule in self.rules:
            if ((not rule.types or type_ in rule.types)
                    and (not rule.severities or severity in rule.severities)):
                accept = rule.accept_s or accept
                resolve = rule.resolve_s or resolve
                break
        return accept, resolve


class ChannelSpec(_Strict):
    rate_per_min: Annotated[int, Field(ge=1, le=10_000)] = 20  # group robots: ~20/min
    max_attempts: Annotated[int, Field(ge=1, le=50)] = 5
    # More messages than this to one target at once go as singles plus one grouped digest.
    group_over: Annotated[int, Field(ge=1, le=1000)] = 5


class AutoResolveSpec(_Strict):
    """Self-clearing types closed by the system once their alarm has been cleared this long;
    never a critical incident (that waits for a person)."""

    types: list[str] = ["gateway_offline"]
    quiet_s: Annotated[float, Field(gt=0)] = 1800


DEFAULT_POLICIES = {
    "default": PolicySpec(steps=[
        StepSpec(after_s=0, notify=["workers"]),
        StepSpec(after_s=300, notify=["leader"]),
        StepSpec(after_s=900, notify=["duty_officer"]),
        StepSpec(after_s=1800, notify=["command_centre"]),
    ]),
}


class LifecycleConfig(_Strict):
    timezone: str = "Asia/Shanghai"  # rosters' HH:MM are local times
    public_url: Annotated[str, Field(pattern=r"^https?://")] = "http://127.0.0.1:8080"
    link_ttl_s: Annotated[int, Field(ge=60)] = 7 * 86400
    tick_s: Annotated[float, Field(gt=0, le=60)] = 1.0
    sla: SlaSpec = SlaSpec()
    policies: Annotated[dict[str, PolicySpec], Field(min_length=1)] = DEFAULT_POLICIES
    channels: dict[str, ChannelSpec] = {}  # per channel name; unnamed ones get the defaults
    # Per vendor (dingtalk, wecom, wecombot, feishu, email): base URLs, SMTP server; each
    # channel module validates its own part at start-up (notify/channels/).
    vendors: dict[str, dict[str, Any]] = {}
    auto_resolve: AutoResolveSpec = AutoResolveSpec()
    # Point-level types not paged while the point's gateway has an open gateway_offline.
    noise_under_gateway_offline: list[str] = ["point_offline", "sensor_offline", "stale"]
    # Types that may not be closed while their alarm is still active (any other type may,
    # with a reason): e.g. [over_temperature] where a fire risk must be seen to clear.
    refuse_close_while_active: list[str] = []

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return _known_zone(value)

    @field_validator("public_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    def policy_for(self, type_: str, severity: str) -> tuple[str, PolicySpec]:
        for name, policy in self.policies.items():
            if policy.matches(type_, severity):
                return name, policy
        name = next(iter(self.policies))
        return name, self.policies[name]

    def channel(self, name: str) -> ChannelSpec:
        return self.channels.get(name.removeprefix("group:"), ChannelSpec())

    @property
    def pass_budget_s(self) -> float:
        """Wall time one escalation or notification pass may take of each tick: a burst of due
        work must not starve ingest of the CPU (the GIL)."""
        return BUSY_SHARE * self.tick_s


class MqttTlsConfig(_Strict):
    """TLS to the broker: its certificate must chain to ``ca_file`` and name the host (or
    ``server_name`` when the host is an address the certificate does not carry)."""

    ca_file: Path
    cert_file: Path | None = None  # a client certificate, for brokers that require one
    key_file: Path | None = None
    server_name: Annotated[str, Field(min_length=1, max_length=253)] | None = None

    def resolved(self, absolute: Callable[[Path | None], Path | None]) -> MqttTlsConfig:
        return self.model_copy(update={"ca_file": absolute(self.ca_file),
                                       "cert_file": absolute(self.cert_file),
                                       "key_file": absolute(self.key_file)})


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
    # End-to-end acknowledgements: the settled sequence ranges go back to each gateway on its
    # own ``ack`` topic, batched every ``settled_ack_interval_s``; a gateway that understands
    # them deletes from its outbox only what the server has settled (docs/architecture.md).
    settled_acks: bool = True
    settled_ack_interval_s: Annotated[float, Field(ge=0.05, le=10.0)] = 0.25
    tls: MqttTlsConfig | None = None  # None: plain MQTT (loopback, tests)


class NatsConfig(_Strict):
    """Ingest from a NATS cluster (``ingest.source: nats``): gateways speak MQTT 3.1.1 to any
    node's MQTT listener; the server reads JetStream streams that capture their subjects,
    through one durable pull consumer per stream shared by every server process."""

    urls: Annotated[list[Annotated[str, Field(pattern=r"^(nats|tls)://")]],
                    Field(min_length=1)] = ["nats://127.0.0.1:4222"]
    username: str | None = None
    password_file: Path | None = None
    # Streams are named {stream_prefix}_EVENTS and {stream_prefix}_TELEMETRY; their consumers
    # {durable}-events and {durable}-telemetry (every server process uses the same names).
    stream_prefix: Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9_]{0,31}$")] = "GRIDSENSE"
    durable: Annotated[str, Field(pattern=r"^[A-Za-z0-9_\-]{1,64}$")] = "gridsense-server"
    replicas: Annotated[int, Field(ge=1, le=5)] = 3  # 3 on a three-node cluster
    # A message taken by a process that dies is delivered again after this long.
    ack_wait_s: Annotated[float, Field(ge=1, le=3600)] = 30.0
    # Unacknowledged messages per consumer, all processes together (the in-flight bound).
    max_ack_pending: Annotated[int, Field(ge=1, le=100_000)] = 2000
    # What a stream keeps while no server reads it (oldest dropped first; the gateways
    # re-send what the server never confirmed).
    max_age_s: Annotated[int, Field(ge=60)] = 7 * 86400
    max_mb: Annotated[int, Field(ge=1)] = 1024
    reconnect_max_s: Annotated[float, Field(ge=0.5, le=600)] = 10.0


class DisplayConfig(_Strict):
    """How the web page shows times and which language it opens in (a user may switch)."""

    timezone: str = "Asia/Shanghai"  # every time a person reads is shown in this zone
    language: Literal["zh-CN", "en"] = "zh-CN"
    # The page's header title (the community or deployment, e.g. 莲园社区网格化管理平台);
    # empty: the catalogue's generic title.
    title: Annotated[str, Field(max_length=100)] = ""

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return _known_zone(value)


TimeseriesKind = Literal["influxdb-v1", "influxdb-v2", "victoriametrics"]


class InfluxConfig(_Strict):
    """The time-series store: ``timeseries:`` in the file (``influxdb:``, its older name, too)."""

    # influxdb-v1: /write and InfluxQL. influxdb-v2: InfluxDB 2.x/3.x through influxdb-client
    # (org, bucket, token); charts read InfluxQL over its v1-compatible /query. victoriametrics:
    # InfluxDB line protocol on /write, charts through its Prometheus-compatible API.
    kind: TimeseriesKind = "influxdb-v1"
    url: Annotated[str, Field(pattern=r"^https?://")] = "http://127.0.0.1:8086"
    # The v1 database; VictoriaMetrics keeps it as the ``db`` label; v2's bucket by default.
    database: Annotated[str, Field(pattern=r"^[A-Za-z0-9_\-]{1,64}$")] = "gridsense"
    org: Annotated[str, Field(min_length=1, max_length=256)] | None = None  # influxdb-v2
    bucket: Annotated[str, Field(min_length=1, max_length=256)] | None = None  # influxdb-v2
    token_file: Path | None = None  # influxdb-v2: the API token, alone in a file of mode 0600
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

    @model_validator(mode="after")
    def _v2_needs_credentials(self) -> InfluxConfig:
        if self.kind == "influxdb-v2" and (self.org is None or self.token_file is None):
            raise ValueError("kind influxdb-v2 needs org and token_file (and bucket, or the "
                             "database name is the bucket)")
        return self

    @property
    def bucket_name(self) -> str:
        return self.bucket or self.database


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


class HttpTlsConfig(_Strict):
    """HTTPS for the web app and the API: the operator's certificate and key, or one issued
    from the deployment CA in ``ca_dir`` on first start for ``names`` (DNS names or addresses
    the phones use). Phones need HTTPS for the camera and the service worker."""

    cert_file: Path | None = None
    key_file: Path | None = None  # mode 0600: refused when others can read it
    ca_dir: Path | None = None  # issue <ca_dir>/issued/<issue_as>.crt/.key unless present
    issue_as: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.\-]{1,64}$")] = "web"
    names: list[Annotated[str, Field(min_length=1, max_length=253)]] = []

    @model_validator(mode="after")
    def _one_source(self) -> HttpTlsConfig:
        own = self.cert_file is not None or self.key_file is not None
        if own and (self.cert_file is None or self.key_file is None):
            raise ValueError("cert_file and key_file go together")
        if own == (self.ca_dir is not None):
            raise ValueError("give either cert_file and key_file, or ca_dir (and names)")
        if self.ca_dir is not None and not self.names:
            raise ValueError("ca_dir needs names: the DNS names or addresses clients use")
        return self

    def resolved(self, absolute: Callable[[Path | None], Path | None]) -> HttpTlsConfig:
        return self.model_copy(update={"cert_file": absolute(self.cert_file),
                                       "key_file": absolute(self.key_file),
                                       "ca_dir": absolute(self.ca_dir)})


class HttpConfig(_Strict):
    host: str = "127.0.0.1"
    port: HttpPort = 8080
    tls: HttpTlsConfig | None = None  # None: plain HTTP (loopback, tests, behind a proxy)
    # With tls: a plain-HTTP listener on this port that redirects to HTTPS and serves the CA
    # certificate at /ca.crt (for a phone to install). None: no plain listener at all.
    redirect_port: HttpPort | None = None
    # /healthz with every counter and gauge, bound to 127.0.0.1 only (monitoring on the same
    # machine). None: details only with a control account's token on the main port.
    local_port: HttpPort | None = None
    # /metrics (Prometheus) is served on the local-only port without a token; on the main
    # port only to a request bearing the token in this file (readable by its owner only).
    # None: /metrics on the main port refuses every request.
    metrics_token_file: Path | None = None
    # Behind a reverse proxy that terminates TLS: trust its X-Forwarded-For/-Proto headers
    # when the connection comes from one of these addresses (uvicorn's forwarded_allow_ips).
    forwarded_allow_ips: list[str] = []
    # Request bodies beyond these sizes are answered 413 before they are read.
    max_body_kb: Annotated[int, Field(ge=1, le=1024)] = 64
    max_import_mb: Annotated[int, Field(ge=1, le=1024)] = 8  # credential CSV imports

    @model_validator(mode="after")
    def _redirect_needs_tls(self) -> HttpConfig:
        if self.redirect_port is not None and self.tls is None:
            raise ValueError("redirect_port redirects to HTTPS: it needs http.tls")
        return self


class SessionsConfig(_Strict):
    """Browser sessions (cookie): idle and absolute expiry, how often a live stream rechecks."""

    idle_s: Annotated[float, Field(ge=1, le=30 * 86400)] = 1800
    absolute_s: Annotated[float, Field(ge=1, le=90 * 86400)] = 43200
    stream_check_s: Annotated[float, Field(gt=0, le=600)] = 15
    max_per_user: Annotated[int, Field(ge=1, le=1000)] = 20  # the oldest goes beyond it
    # Browsers keep a Secure cookie for https:// and http://localhost only; off solely for a
    # plain-HTTP deployment reached by another name (and then passwords cross in clear too).
    cookie_secure: bool = True


class ThrottleConfig(_Strict):
    """Failed logins per account and per address: free tries, then a growing delay (answered
    429 with Retry-After), then a lockout; all forgotten after ``window_s`` without failures."""

    free_failures: Annotated[int, Field(ge=0, le=100)] = 3
    base_delay_s: Annotated[float, Field(gt=0, le=3600)] = 1
    max_delay_s: Annotated[float, Field(gt=0, le=86400)] = 60
    lockout_after: Annotated[int, Field(ge=1, le=10_000)] = 10
    lockout_s: Annotated[float, Field(gt=0, le=7 * 86400)] = 900
    window_s: Annotated[float, Field(gt=0, le=30 * 86400)] = 3600
    max_rows: Annotated[int, Field(ge=100, le=10_000_000)] = 100_000
    # Reverse proxies whose X-Forwarded-For is believed (their own addresses); nobody else's.
    trusted_proxies: list[str] = []


class AuthConfig(_Strict):
    token_ttl_s: Annotated[int, Field(ge=60, le=30 * 86400)] = 43200
    secret_file: Path | None = None
    sessions: SessionsConfig = SessionsConfig()
    throttle: ThrottleConfig = ThrottleConfig()


class AuditConfig(_Strict):
    retention_days: Annotated[float, Field(gt=0, le=3650)] = 365
    prune_every_s: Annotated[float, Field(gt=0, le=86400)] = 3600
    prune_batch: Annotated[int, Field(ge=1, le=1_000_000)] = 10_000  # rows per prune pass
    queue_max: Annotated[int, Field(ge=1, le=1_000_000)] = 10_000  # refusals waiting to be written


class IncidentsConfig(_Strict):
    # An incident event older than this on arrival (device time; e.g. replayed after an
    # outage) is recorded as backfilled: shown to control, never paged to a worker as new.
    late_after_s: Annotated[float, Field(gt=0)] = 300


class CardCorrelationConfig(_Strict):
    """One credential granted at doors of two gateways within ``window_s``: the server's
    ``card_two_places`` incident (access_control/correlate.py)."""

    enabled: bool = True
    window_s: Annotated[float, Field(gt=0, le=3600)] = 60.0
    severity: Literal["minor", "major", "critical"] = "major"
    max_credentials: Annotated[int, Field(ge=1, le=10_000_000)] = 100_000  # held in memory


class SnapshotsConfig(_Strict):
    """Incident JPEGs (snapshots.py): files under ``dir``, the oldest evicted at the cap."""

    dir: Path | None = None  # default: <state folder>/snapshots
    max_mb: Annotated[float, Field(gt=0, le=1_000_000)] = 2048


class PhotosConfig(_Strict):
    """Photos people upload to incidents from their phones (onsite/photo_store.py)."""

    dir: Path | None = None  # default: <state folder>/photos
    max_bytes: Annotated[int, Field(ge=1024, le=64 * 2**20)] = 12 * 2**20  # one upload
    max_per_incident: Annotated[int, Field(ge=1, le=100)] = 12
    max_pixels: Annotated[int, Field(ge=10_000, le=200_000_000)] = 50_000_000
    thumbnail_px: Annotated[int, Field(ge=64, le=1024)] = 320  # the longer side
    # EXIF GPS position (and XMP, which may repeat it) is removed unless this is set.
    keep_location: bool = False
    # All photos together; beyond it uploads are refused (evidence is never evicted).
    max_mb: Annotated[float, Field(gt=0, le=10_000_000)] = 4096


class IngestConfig(_Strict):
    # Where gateways' messages come from: the MQTT broker (``mqtt:``), or a NATS cluster's
    # JetStream (``nats:``; gateways still speak MQTT 3.1.1 to its nodes).
    source: Literal["mqtt", "nats"] = "mqtt"
    # A message or reading dated further ahead of the server's clock is refused (dead-lettered):
    # a gateway with a wrong clock must not put an incident on top of every list.
    max_clock_ahead_s: Annotated[float, Field(ge=0)] = 300
    # Older readings are refused rather than sent to InfluxDB, which would refuse them: set it
    # to the retention policy's duration. None: only the protocol's floor (2000-01-01).
    max_age_s: Annotated[float, Field(gt=0)] | None = None
    # Dead letters kept; beyond it the oldest go (counted). A row holds at most 256 KiB (a
    # snapshot's 1 MiB), so a flood of the largest costs at most ~512 MB at the default.
    dead_letters_max: Annotated[int, Field(ge=1, le=10_000_000)] = 2000
    # /healthz answers 503 when the oldest unacknowledged message has waited this long.
    stall_after_s: Annotated[float, Field(gt=0)] = 120
    # Points a gateway reports that the registry does not know (an installer's new sensor)
    # are kept, tagged grid=unassigned and listed, up to this many per gateway; beyond it
    # their messages are refused (dead-lettered). 0: refuse every unregistered point.
    unassigned_points_max: Annotated[int, Field(ge=0, le=10_000)] = 50


class BrokerAdminConfig(_Strict):
    """The broker's admin login, for the accounts the server makes itself (enrollment)."""

    admin: Annotated[str, Field(min_length=1, max_length=128)] = "gridsense-admin"
    admin_password_file: Path | None = None  # None: the server makes no broker accounts


class EnrollmentConfig(_Strict):
    """What a gateway is told when it enrolls: where the server and the broker are, for it."""

    code_ttl_s: Annotated[int, Field(ge=60, le=30 * 86400)] = 86400
    # The URL gateways reach the server at; None: lifecycle.public_url.
    server_url: Annotated[str, Field(pattern=r"^https?://")] | None = None
    broker_host: str | None = None  # None: mqtt.host (right when the server shares the LAN)
    broker_port: Port | None = None  # None: mqtt.port
    broker_tls: bool = False  # gateways speak TLS to the broker: needs ca_dir
    broker_server_name: Annotated[str, Field(min_length=1, max_length=253)] | None = None
    # The deployment CA: signs gateways' certificate requests; its fingerprint is in every code.
    ca_dir: Path | None = None
    cert_days: Annotated[int, Field(ge=1, le=3650)] = 825

    @model_validator(mode="after")
    def _tls_needs_ca(self) -> EnrollmentConfig:
        if self.broker_tls and self.ca_dir is None:
            raise ValueError("broker_tls needs ca_dir (the deployment CA that signs gateways)")
        return self


class PlansConfig(_Strict):
    """Site plans (plans/): one image per community, kept in the database."""

    max_bytes: Annotated[int, Field(ge=1024, le=64 * 2**20)] = 8 * 2**20
    max_side_px: Annotated[int, Field(ge=16, le=50_000)] = 16_384
    max_markers: Annotated[int, Field(ge=1, le=20_000)] = 5000  # per community
    # An offline map tile server, given to the page (GET /api/v1/plans: tile_url), e.g.
    # "/tiles/{z}/{x}/{y}.png" (same origin, behind the proxy) or
    # "https://tiles.estate.lan/{z}/{x}/{y}.png" (its origin joins the CSP's img-src).
    tile_url: Annotated[str, Field(
        max_length=500, pattern=r"^(https?://[^/\s'\";]+)?/[^\s'\";]*\{z\}[^\s'\";]*$",
    )] | None = None

    @property
    def tile_origin(self) -> str | None:
        """The tile server's origin when it is not this server's (for the CSP's img-src)."""
        if self.tile_url is None or self.tile_url.startswith("/"):
            return None
        scheme, _, rest = self.tile_url.partition("://")
        return f"{scheme}://{rest.split('/', 1)[0]}"


class CommissioningConfig(_Strict):
    """The commissioning check of a gateway: how long the drill page may take to reach the
    installer before the report says it did not."""

    drill_timeout_s: Annotated[float, Field(gt=0, le=86400)] = 600
    # The drill goes to the app and to each of these of the installer's own contacts (empty:
    # every contact they have).
    channels: list[ChannelName] = []


class ServerConfig(_Strict):
    mqtt: MqttConfig = MqttConfig()
    nats: NatsConfig = NatsConfig()
    influxdb: Annotated[InfluxConfig, Field(
        validation_alias=AliasChoices("timeseries", "influxdb"))] = InfluxConfig()
    database: DatabaseConfig = DatabaseConfig()
    registry: RegistryConfig = RegistryConfig()
    http: HttpConfig = HttpConfig()
    auth: AuthConfig = AuthConfig()
    incidents: IncidentsConfig = IncidentsConfig()
    access_correlation: CardCorrelationConfig = CardCorrelationConfig()
    lifecycle: LifecycleConfig = LifecycleConfig()  # SLA clocks, escalation, channels
    snapshots: SnapshotsConfig = SnapshotsConfig()
    photos: PhotosConfig = PhotosConfig()
    ingest: IngestConfig = IngestConfig()
    audit: AuditConfig = AuditConfig()
    display: DisplayConfig = DisplayConfig()
    broker: BrokerAdminConfig = BrokerAdminConfig()
    enrollment: EnrollmentConfig = EnrollmentConfig()
    plans: PlansConfig = PlansConfig()
    commissioning: CommissioningConfig = CommissioningConfig()
    # Not a file key: the folder relative paths were resolved against (the config's folder).
    _base_dir: Path = PrivateAttr(default_factory=Path.cwd)

    @model_validator(mode="after")
    def _links_over_https(self) -> ServerConfig:
        # Signed links in WeCom or e-mail open the web app: over HTTPS when it serves HTTPS.
        if self.http.tls is not None and not self.lifecycle.public_url.startswith("https://"):
            raise ValueError("lifecycle.public_url must be an https:// URL when http.tls is set "
                             "(signed links in messages open the web app)")
        return self

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

    @property
    def photo_dir(self) -> Path:
        return self.photos.dir or self.state_dir / "photos"

    def resolved(self, base_dir: Path) -> ServerConfig:
        """A copy with every relative path (and relative SQLite path) made absolute."""
        base = base_dir.resolve()

        def absolute(path: Path | None) -> Path | None:
            return None if path is None else (path if path.is_absolute() else base / path)

        copy = self.model_copy(
            update={
                "mqtt": self.mqtt.model_copy(
                    update={"password_file": absolute(self.mqtt.password_file),
                            "tls": self.mqtt.tls and self.mqtt.tls.resolved(absolute)}
                ),
                "nats": self.nats.model_copy(
                    update={"password_file": absolute(self.nats.password_file)}
                ),
                "influxdb": self.influxdb.model_copy(
                    update={"spool_dir": absolute(self.influxdb.spool_dir),
                            "token_file": absolute(self.influxdb.token_file)}
                ),
                "database": DatabaseConfig(url=resolve_sqlite_url(self.database.url, base)),
                "registry": RegistryConfig(file=absolute(self.registry.file)),
                "snapshots": self.snapshots.model_copy(
                    update={"dir": absolute(self.snapshots.dir)}
                ),
                "photos": self.photos.model_copy(update={"dir": absolute(self.photos.dir)}),
                "auth": self.auth.model_copy(
                    update={"secret_file": absolute(self.auth.secret_file)}
                ),
                "http": self.http.model_copy(
                    update={"tls": self.http.tls and self.http.tls.resolved(absolute)}
                ),
                "broker": self.broker.model_copy(
                    update={"admin_password_file": absolute(self.broker.admin_password_file)}
                ),
                "enrollment": self.enrollment.model_copy(
                    update={"ca_dir": absolute(self.enrollment.ca_dir)}
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
    if password_file is not None:
        try:
            check_private(password_file)
            if not password_file.read_text(encoding="utf-8").strip():
                raise InsecureFileError(f"{password_file} is empty (it should hold the broker "
                                        "password of mqtt.username)")
        except (InsecureFileError, UnicodeDecodeError) as exc:
            problem = (str(exc) if isinstance(exc, InsecureFileError)
                       else f"{password_file} is not UTF-8 text")
            raise ConfigError(str(path), [("mqtt.password_file", None, problem)]) from None
    token_file = config.influxdb.token_file
    if token_file is not None:
        try:
            check_private(token_file)
            if not token_file.read_text(encoding="utf-8").strip():
                raise InsecureFileError(f"{token_file} is empty (it should hold the API token)")
        except (OSError, InsecureFileError, UnicodeDecodeError) as exc:
            raise ConfigError(str(path), [("timeseries.token_file", None, str(exc))]) from None
    if config.mqtt.tls is not None:
        try:
            mqtt_tls_context(config.mqtt.tls)  # a bad CA or key fails here, not on connect
        except TlsFileError as exc:
            raise ConfigError(str(path), [("mqtt.tls", None, str(exc))]) from None
    return config


def mqtt_tls_context(tls: MqttTlsConfig) -> ClientTls:
    """The client context for the broker; raises TlsFileError naming the unusable file."""
    return client_context(tls.ca_file, tls.cert_file, tls.key_file, tls.server_name)
