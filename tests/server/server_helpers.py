"""Helpers shared by the server tests: a sample registry, polling waits, a config writer and a
stand-in gateway publishing real protocol v1 messages."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from gridsense_devtools.processes import (
    wait_until as wait_until,  # re-exported: one poller for all tests
)
from gridsense_protocol import (
    AlarmState,
    Envelope,
    GatewayState,
    Incident,
    Kind,
    Reading,
    Severity,
    Status,
    Telemetry,
    encode,
    topic_for,
    utc_now,
)

REGISTRY_YAML = """\
streets:
  - id: hx
    name: 湖西街道
    communities:
      - id: ly
        name: 莲园社区
        grids:
          - id: g01
            name: 第一网格
            micro_grids:
              - {id: g01-a, name: 1-3号楼}
          - id: g02
            name: 第二网格
points:
  - id: gw-01.boiler
    gateway: gw-01
    grid: g01-a
    name: 1号楼锅炉房
    location: 1号楼 B1
  - id: gw-01.pump
    gateway: gw-01
    grid: g01
    name: 水泵房
  - id: gw-02.boiler
    gateway: gw-02
    grid: g02
    name: 2号楼锅炉房
staff:
  - username: worker-g01
    name: 张伟
    role: worker
    grids: [g01]
    password: demo
  - username: worker-g02
    name: 李娜
    role: worker
    grids: [g02]
    password: demo2
  - username: control
    name: 监控中心
    role: control
    password: ctl
"""


# The tests use fixed device times (2024) so timestamps can be asserted exactly; with the default
# late_after_s every such incident would be "backfilled". Tests of late incidents set it.
TEN_YEARS_S = 10 * 365 * 86400


async def async_wait_until(
    condition: Callable[[], Any], within_s: float = 20.0, what: str = ""
) -> Any:
    """Poll ``condition`` (plain or async) until truthy; fail after ``within_s``."""
    deadline = time.monotonic() + within_s
    while True:
        value = condition()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within_s}s waiting for {what or condition}")
        await asyncio.sleep(0.05)


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
) -> Path:
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
incidents:
  late_after_s: {late_after_s}
""",
        encoding="utf-8",
    )
    return path


class EdgePublisher:
    """A stand-in for a gateway: a real paho client publishing protocol v1 envelopes."""

    def __init__(self, port: int, gateway: str = "gw-01", *, will: bool = False) -> None:
        self.gateway = gateway
        self.port = port
        self.seq = 0
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=gateway,
                                  protocol=mqtt.MQTTv5)
        if will:
            offline = Status(gateway=gateway, seq=self.next_seq(), ts=utc_now(),
                             state=GatewayState.OFFLINE)
            self.client.will_set(topic_for(gateway, Kind.STATUS), encode(offline), qos=1,
                                 retain=True)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def publish_raw(self, topic: str, payload: bytes, retain: bool = False) -> None:
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(10)
        assert info.is_published(), f"publish to {topic} not acknowledged"

    def publish(self, message: Envelope, retain: bool = False) -> Envelope:
        self.publish_raw(topic_for(message.gateway, message.kind), encode(message), retain)
        return message

    def telemetry(self, readings: list[tuple[str, str, float, datetime]]) -> Telemetry:
        return Telemetry(
            gateway=self.gateway, seq=self.next_seq(), ts=utc_now(),
            readings=[Reading(point=p, metric=m, value=v, unit="°C", ts=ts)
                      for p, m, v, ts in readings],
        )

    def incident(self, point: str, *, state: AlarmState = AlarmState.ACTIVE,
                 ts: datetime | None = None, value: float = 65.0,
                 type: str = "over_temperature") -> Incident:
        return Incident(
            gateway=self.gateway, seq=self.next_seq(), ts=ts or utc_now(), point=point,
            type=type, severity=Severity.MAJOR, state=state, value=value, threshold=60.0,
            unit="°C", message=f"{point} at {value} °C",
        )

    def close(self, *, with_will: bool = False) -> None:
        if with_will:
            # MQTT 5 reason 0x04: a clean goodbye that still makes the broker send the will.
            self.client.disconnect(
                reasoncode=ReasonCode(PacketTypes.DISCONNECT, "Disconnect with will message")
            )
        else:
            self.client.disconnect()
        self.client.loop_stop()


