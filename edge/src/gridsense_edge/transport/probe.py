"""One short MQTT connection with the gateway's own credentials, to tell apart what is wrong
with the uplink: the broker cannot be reached, TLS fails, or the login is refused.

It uses the gateway's client id (the broker pins it to the account), so a running agent's
connection is taken over for a moment; the agent reconnects by itself and loses nothing.
"""

from __future__ import annotations

import queue
import socket
import ssl
from dataclasses import dataclass
from enum import StrEnum

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from gridsense_protocol.tls import ClientTls


class ProbeOutcome(StrEnum):
    OK = "ok"
    UNREACHABLE = "unreachable"
    TLS = "tls"
    REFUSED = "refused"  # the broker answered CONNACK with a failure (password, client id)
    NO_ANSWER = "no_answer"


@dataclass(frozen=True, slots=True)
class ProbeResult:
    outcome: ProbeOutcome
    detail: str


# mqtt.protocol in the gateway's config -> paho's protocol version
MQTT_PROTOCOLS = {"5": MQTTProtocolVersion.MQTTv5, "3.1.1": MQTTProtocolVersion.MQTTv311}


def probe_broker(host: str, port: int, gateway: str, password: str | None,
                 tls: ClientTls | None, timeout_s: float = 5.0,
                 protocol: str = "5") -> ProbeResult:
    try:
        socket.create_connection((host, port), timeout=timeout_s).close()
    except OSError as exc:
        return ProbeResult(ProbeOutcome.UNREACHABLE, f"{host}:{port}: {exc}")
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=gateway,
                         protocol=MQTT_PROTOCOLS[protocol], reconnect_on_failure=False)
    client.username_pw_set(gateway, password)
    if tls is not None:
        client.tls_set_context(tls)
    answers: queue.Queue[str | None] = queue.Queue()
    client.on_connect = lambda _c, _u, _f, reason, _p: answers.put(
        str(reason) if reason.is_failure else None)
    try:
        client.connect(host, port, keepalive=30)
    except ssl.SSLError as exc:
        return ProbeResult(ProbeOutcome.TLS, f"{host}:{port}: {exc}")
    except OSError as exc:
        return ProbeResult(ProbeOutcome.UNREACHABLE, f"{host}:{port}: {exc}")
    client.loop_start()
    try:
        refused = answers.get(timeout=timeout_s)
    except queue.Empty:
        return ProbeResult(ProbeOutcome.NO_ANSWER, f"no CONNACK within {timeout_s:g} s")
    finally:
        client.disconnect()
        client.loop_stop()
    if refused is not None:
        return ProbeResult(ProbeOutcome.REFUSED, refused)
    return ProbeResult(ProbeOutcome.OK, f"{host}:{port}" + (" (TLS)" if tls else ""))
