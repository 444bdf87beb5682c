"""Helpers for the edge tests: condition polling, an MQTT recorder, the agent as a subprocess.

(Named ``edge_support`` rather than ``support`` because test folders share one import path.)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import yaml
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from ulid import ULID

from gridsense_devtools.processes import (
    spawn,
    stop_process,
    wait_until,  # re-exported: one poller for every test folder
)
from gridsense_protocol import Envelope, Kind, decode, parse_topic

AGENT_BIN = Path(sys.executable).parent / "gridsense-edge"


@dataclass
class Received:
    topic: str
    payload: bytes
    retain: bool

    @property
    def kind(self) -> Kind:
        return parse_topic(self.topic).kind

    def message(self) -> Envelope:
        decoded = decode(self.topic, self.payload)
        assert isinstance(decoded, Envelope)
        return decoded


@dataclass
class MqttRecorder:
    """Subscribes to everything under gridsense/ and keeps what arrives (thread-safe)."""

    port: int
    topics: tuple[str, ...] = ("gridsense/#",)
    received: list[Received] = field(default_factory=list)
    # A persistent session: the broker (with persistence on) keeps what arrives while this
    # recorder is disconnected, e.g. across a broker restart.
    persistent: bool = False

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self.subscribed = threading.Event()
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"rec-{ULID()}",
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = lambda *_: self.subscribed.set()
        self._client.on_message = self._on_message
        self._client.reconnect_delay_set(0.2, 1)

    def start(self) -> MqttRecorder:
        properties = None
        if self.persistent:
            properties = Properties(PacketTypes.CONNECT)
            properties.SessionExpiryInterval = 3600
        self._client.connect_async("127.0.0.1", self.port, clean_start=not self.persistent,
                                   properties=properties)
        self._client.loop_start()
        wait_until(self.subscribed.is_set, 20, what="the recorder's subscription")
        return self

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def _on_connect(self, client: mqtt.Client, *_: Any) -> None:
        client.subscribe([(t, 1) for t in self.topics])

    def _on_message(self, _client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.received.append(Received(msg.topic, bytes(msg.payload), bool(msg.retain)))

    def of_kind(self, kind: Kind) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.kind is kind]

    def messages(self, kind: Kind) -> list[Any]:
        return [r.message() for r in self.of_kind(kind)]

    def readings(self, point: str, metric: str = "temperature") -> list[Any]:
        return [
            reading
            for telemetry in self.messages(Kind.TELEMETRY)
            for reading in telemetry.readings
            if reading.point == point and reading.metric == metric
        ]


def write_config(path: Path, config: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


@dataclass
class AgentProcess:
    proc: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        return stop_process(self.proc, sig, timeout)

    def rss_bytes(self) -> int:
        with open(f"/proc/{self.proc.pid}/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def start_agent(config: Path, log_path: Path) -> AgentProcess:
    return AgentProcess(spawn([str(AGENT_BIN), "run", "--config", str(config)], log_path),
                        log_path)


class BlackholeProxy:
    """TCP proxy agent -> broker whose ``cut()`` makes the link go dark, like a dead 4G link.

    While cut, bytes stop flowing both ways (they are dropped, not refused) and new
    connections are accepted but never reach the broker, so the agent can only notice through
    its MQTT keepalive. ``restore()`` closes the dead connections (as a carrier NAT would
    forget them) and lets new ones through.
    """

    def __init__(self, target_port: int) -> None:
        import socket

        self.target_port = target_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._flowing = threading.Event()
        self._flowing.set()
        self._lock = threading.Lock()
        self._sockets: list[Any] = []
        self._closed = False
        threading.Thread(target=self._accept_loop, daemon=True).start()

    def cut(self) -> None:
        self._flowing.clear()

    def restore(self) -> None:
        with self._lock:
            dead, self._sockets = self._sockets, []
        for sock in dead:
            self._close(sock)
        self._flowing.set()

    def close(self) -> None:
        self._closed = True
        self._close(self._listener)
        self.restore()

    @staticmethod
    def _close(sock: Any) -> None:
        import contextlib
        import socket

        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            sock.close()

    def _accept_loop(self) -> None:
        import socket

        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self._sockets.append(client)
            if not self._flowing.is_set():
                continue  # accepted, then silence: a connect that hangs
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), 5)
            except OSError:
                self._close(client)
                continue
            with self._lock:
                self._sockets.append(upstream)
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(src, dst), daemon=True).start()

    def _pipe(self, src: Any, dst: Any) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if self._flowing.is_set():
                    dst.sendall(data)
                # while cut, what was read is dropped: nothing reaches the other side
        except OSError:
            pass
        finally:
            self._close(dst)
            self._close(src)
