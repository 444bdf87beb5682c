"""A private three-node NATS cluster on loopback (Debian's nats-server), each node with
JetStream in a folder of its own and an MQTT listener: gateways speak MQTT 3.1.1 to any node,
the server reads JetStream over NATS. For tests and drills; nothing here touches a system-wide
service."""

from __future__ import annotations

import json
import shutil
import signal
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from gridsense_devtools.ports import free_port
from gridsense_devtools.services import _Service

NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"
CLUSTER_NAME = "gridsense"


@dataclass
class NatsNode(_Service):
    """One node: ``port`` is its NATS client port (the one waited for)."""

    name: str = "n1"
    cluster_port: int = field(default_factory=free_port)
    mqtt_port: int = field(default_factory=free_port)
    monitor_port: int = field(default_factory=free_port)
    routes: list[int] = field(default_factory=list)  # every node's cluster port

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def write_config(self) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        routes = ", ".join(f"nats-route://127.0.0.1:{port}" for port in self.routes)
        config = self.directory / "nats.conf"
        # MQTT needs JetStream and a server_name; its sessions, retained messages and QoS 1
        # deliveries live in JetStream streams the server makes itself.
        config.write_text(f"""
server_name: {self.name}
listen: 127.0.0.1:{self.port}
http: 127.0.0.1:{self.monitor_port}
jetstream {{ store_dir: "{self.directory / "jetstream"}", max_memory_store: 64MB,
             max_file_store: 8GB }}
cluster {{ name: {CLUSTER_NAME}, listen: 127.0.0.1:{self.cluster_port}, routes: [{routes}] }}
mqtt {{ listen: 127.0.0.1:{self.mqtt_port}, ack_wait: "10s", max_ack_pending: 1000 }}
""")
        return config

    def start(self) -> NatsNode:
        self._spawn([NATS_SERVER, "-c", str(self.write_config())], timeout=30)
        return self

    def healthy(self) -> bool:
        """The node answers and its JetStream is usable (a meta leader is known)."""
        try:
            with urllib.request.urlopen(
                    f"http://127.0.0.1:{self.monitor_port}/healthz", timeout=2) as response:
                return json.loads(response.read()).get("status") == "ok"
        except (OSError, ValueError):
            return False


class NatsCluster:
    def __init__(self, directory: Path, size: int = 3) -> None:
        cluster_ports = [free_port() for _ in range(size)]
        self.nodes = [
            NatsNode(directory / f"n{i + 1}", free_port(), name=f"n{i + 1}",
                     cluster_port=cluster_ports[i], routes=cluster_ports)
            for i in range(size)
        ]

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    def start(self, timeout: float = 60) -> NatsCluster:
        for node in self.nodes:
            if not node.running:
                node.start()
        deadline = time.monotonic() + timeout
        while not all(node.healthy() for node in self.nodes if node.running):
            if time.monotonic() > deadline:
                raise TimeoutError("the NATS cluster's JetStream did not become healthy; logs:\n"
                                   + "\n".join(str(n.log_path) for n in self.nodes))
            time.sleep(0.2)
        return self

    def kill(self, index: int) -> None:
        self.nodes[index].stop(signal.SIGKILL)

    def stop(self) -> None:
        for node in self.nodes:
            node.resume()
            node.stop()
