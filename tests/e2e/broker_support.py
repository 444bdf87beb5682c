"""A Mosquitto with the dynamic-security plugin on a free port, and MQTT peers that record what
happens to them (CONNACK, disconnects, messages), for the broker-account tests."""

from __future__ import annotations

import contextlib
import queue
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from gridsense_devtools.files import write_secret
from gridsense_devtools.ports import free_port
from gridsense_devtools.services import Mosquitto
from gridsense_server.broker.dynsec_file import write_initial_state
from gridsense_server.broker.mosquitto_dynsec import MosquittoDynsecAccounts, dynsec_accounts

ADMIN = "gridsense-admin"
NOT_AUTHORIZED = 135  # MQTT 5 CONNACK / SUBACK / PUBACK reason code
WAIT_S = 10


@dataclass
class DynsecBroker:
    broker: Mosquitto
    admin_password: str
    admin_password_file: Path

    @property
    def port(self) -> int:
        return self.broker.port

    @contextlib.contextmanager
    def accounts(self) -> Iterator[MosquittoDynsecAccounts]:
        with dynsec_accounts("127.0.0.1", self.port, ADMIN, self.admin_password) as accounts:
            yield accounts


def start_dynsec_broker(folder: Path, **options: object) -> DynsecBroker:
    """A broker whose only account is the admin, from the state file gridsense writes."""
    password = secrets.token_urlsafe(18)
    password_file = folder / "admin.password"
    folder.mkdir(parents=True, exist_ok=True)
    write_secret(password_file, password + "\n")
    state = folder / "dynamic-security.json"
    assert write_initial_state(state, ADMIN, password)
    broker = Mosquitto(folder / "mosquitto", free_port(), dynsec_file=state,
                       **options).start()  # type: ignore[arg-type]
    return DynsecBroker(broker, password, password_file)


@dataclass
class Peer:
    """One MQTT 5 client with paho's own network thread; it never reconnects by itself, so a
    recorded disconnect is the broker's doing."""

    client: mqtt.Client
    connack: ReasonCode | None = None
    disconnects: list[str] = field(default_factory=list)
    messages: queue.Queue[tuple[str, bytes]] = field(default_factory=queue.Queue)
    acks: queue.Queue[list[ReasonCode]] = field(default_factory=queue.Queue)
    lost: queue.Queue[str] = field(default_factory=queue.Queue)

    @property
    def accepted(self) -> bool:
        return self.connack is not None and not self.connack.is_failure

    def subscribe(self, *topics: str) -> list[ReasonCode]:
        self.client.subscribe([(topic, 1) for topic in topics])
        return self.acks.get(timeout=WAIT_S)

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(WAIT_S)

    def next_message(self) -> tuple[str, bytes]:
        return self.messages.get(timeout=WAIT_S)

    def wait_disconnected(self) -> str:
        return self.lost.get(timeout=WAIT_S)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.disconnect()
        self.client.loop_stop()


def connect(port: int, username: str | None, password: str | None, client_id: str) -> Peer:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5,
                         reconnect_on_failure=False)
    if username is not None:
        client.username_pw_set(username, password)
    peer = Peer(client)
    connacks: queue.Queue[ReasonCode] = queue.Queue()

    def on_disconnect(_c: mqtt.Client, _u: object, _f: object, reason: ReasonCode,
                      _p: object) -> None:
        peer.disconnects.append(str(reason))
        peer.lost.put(str(reason))

    # Every callback is in place before CONNECT: nothing the broker does can go unseen.
    client.on_connect = lambda _c, _u, _f, reason, _p: connacks.put(reason)
    client.on_disconnect = on_disconnect
    client.on_message = lambda _c, _u, msg: peer.messages.put((msg.topic, msg.payload))
    client.on_subscribe = lambda _c, _u, _mid, codes, _p: peer.acks.put(codes)
    client.connect("127.0.0.1", port)
    client.loop_start()
    peer.connack = connacks.get(timeout=WAIT_S)
    if not peer.accepted:
        client.loop_stop()
    return peer


@contextlib.contextmanager
def peers() -> Iterator[list[Peer]]:
    """Collects the peers a test opens and closes them all after it."""
    opened: list[Peer] = []
    try:
        yield opened
    finally:
        for peer in opened:
            peer.close()
