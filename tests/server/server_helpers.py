"""Helpers shared by the server tests: a stand-in gateway publishing real protocol v1 messages,
and (re-exported from gridsense_devtools) the registry, waits and config writer of the benches."""

from __future__ import annotations

import threading
from datetime import datetime

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from gridsense_devtools.community import REGISTRY_YAML as REGISTRY_YAML
from gridsense_devtools.processes import async_wait_until as async_wait_until
from gridsense_devtools.processes import wait_until as wait_until
from gridsense_devtools.server_config import TEN_YEARS_S as TEN_YEARS_S
from gridsense_devtools.server_config import write_server_config as write_server_config
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


class Watcher:
    """A gateway's side of the server's publications: what arrives on its topics."""

    def __init__(self, port: int, topic: str, *,
                 protocol: mqtt.MQTTProtocolVersion = mqtt.MQTTv5) -> None:
        self.payloads: list[bytes] = []
        self.subscribed = threading.Event()
        self.arrived = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="watcher",
                                  protocol=protocol)
        self.client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        self.payloads.append(msg.payload)
        self.arrived.set()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class EdgePublisher:
    """A stand-in for a gateway: a real paho client publishing protocol v1 envelopes."""

    def __init__(self, port: int, gateway: str = "gw-01", *, will: bool = False,
                 protocol: mqtt.MQTTProtocolVersion = mqtt.MQTTv5) -> None:
        self.gateway = gateway
        self.port = port
        self.seq = 0
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=gateway,
                                  protocol=protocol)
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


