"""Server ingest throughput as deployed: manual acks after durable effects, sequence tracking,
dedup, InfluxDB (and the disk spool when asked). Not a test: nothing here is asserted.

    .venv/bin/python scripts/bench_server.py [--messages 1000] [--readings 100] [--gateways 20]
                                             [--mode backlog|live] [--influx up|down]
                                             [--timeseries influxdb|victoriametrics]

A private Mosquitto, a private InfluxDB and ``gridsense-server run`` as a process of its own
(its peak RSS is sampled). Publishers (one process per 10 gateways) send telemetry with
per-gateway sequence numbers 1..N, as gateways do.

  backlog  publish everything while the server is stopped (the broker queues it for the
           server's persistent session), then start it and time the drain — the server alone.
  live     the server runs while the publishers publish.
  --influx down   InfluxDB is unreachable: everything goes through the disk spool (and is
           acknowledged from there); reports the spooling rate.
  --timeseries victoriametrics   the server writes to a private VictoriaMetrics instead.

Done = every message acknowledged (``ingest.unacked`` 0 after ``ingest.settled`` reached the
message count) and, with InfluxDB up, every line written. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import platform
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
from demo_store import demo_store

from gridsense_devtools.ports import free_port
from gridsense_devtools.processes import spawn, stop_process
from gridsense_devtools.services import Mosquitto
from gridsense_protocol import Kind, Reading, Telemetry, encode, topic_for

BIN = Path(sys.executable).parent
# Yesterday's midnight: recent, because VictoriaMetrics drops (and still answers 204 for)
# samples older than its retention period, one month by default.
T0 = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
POINTS_PER_GATEWAY = 50


def gateway(g: int) -> str:
    return f"gw-b{g:03d}"


def payloads(g: int, messages: int, readings: int) -> list[bytes]:
    name = gateway(g)
    out = []
    for seq in range(1, messages + 1):
        base = T0 + timedelta(seconds=seq)
        out.append(encode(Telemetry(
            gateway=name, seq=seq, ts=base,
            readings=[Reading(point=f"{name}.p{r % POINTS_PER_GATEWAY:02d}",
                              metric="temperature", value=20.0 + (r % 70) / 10, unit="°C",
                              ts=base + timedelta(microseconds=r)) for r in range(readings)],
        )))
    return out


def publish(port: int, gateways: list[int], messages: int, readings: int) -> None:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    data = {g: payloads(g, messages, readings) for g in gateways}
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{gateways[0]}",
                         protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    infos = []
    for i in range(messages):  # interleaved, as gateways publish side by side
        for g in gateways:
            infos.append(client.publish(topic_for(gateway(g), Kind.TELEMETRY), data[g][i], qos=1))
    for info in infos:
        info.wait_for_publish(600)
    client.loop_stop()
    client.disconnect()


def registry(gateways: int) -> str:
    points = "\n".join(
        f"  - {{id: {gateway(g)}.p{p:02d}, gateway: {gateway(g)}, grid: g01, name: p{p}}}"
        for g in range(gateways) for p in range(POINTS_PER_GATEWAY)
    )
    return ("streets:\n  - {id: s, name: s, communities: [{id: c, name: c, grids: "
            f"[{{id: g01, name: g}}]}}]}}\npoints:\n{points}\n")


def health(url: str) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=5) as response:
            return json.loads(response.read())
    except OSError:
        return {}


class Server:
    def __init__(self, config: Path, url: str, log: Path) -> None:
        self.config, self.url, self.log = config, url, log
        self.proc: subprocess.Popen[bytes] | None = None
        self.rss_peak = 0

    def start(self) -> None:
        self.proc = spawn([str(BIN / "gridsense-server"), "run", "--config", str(self.config)],
                          self.log)
        deadline = time.monotonic() + 60
        while not health(self.url).get("mqtt.connected"):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"server did not start; see {self.log}")
            time.sleep(0.1)

    def sample(self) -> dict[str, Any]:
        assert self.proc is not None
        self.rss_peak = max(self.rss_peak, psutil.Process(self.proc.pid).memory_info().rss)
        return health(self.url)

    def cpu_s(self) -> float:
        assert self.proc is not None
        times = psutil.Process(self.proc.pid).cpu_times()
        return times.user + times.system

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, timeout=60)


def run(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="gridsense-bench-server-"))
    broker = Mosquitto(work / "mqtt", free_port(),
                       extra_config=["max_queued_messages 0", "max_inflight_messages 0"]).start()
    store = demo_store(args.timeseries, work, free_port(), free_port())
    store.start()
    store_url = store.url if args.influx == "up" else f"http://127.0.0.1:{free_port()}"
    (work / "registry.yaml").write_text(registry(args.gateways))
    http_port, local_port = free_port(), free_port()
    (work / "server.yaml").write_text(json.dumps({
        "mqtt": {"host": "127.0.0.1", "port": broker.port, "client_id": "bench-server",
                 "receive_maximum": args.receive_maximum},
        "timeseries": store.server_section(url=store_url, batch_size=args.batch_size,
                                           spool_max_mb=args.spool_mb),
        "database": {"url": f"sqlite:///{work / 'server.db'}"},
        "registry": {"file": str(work / "registry.yaml")},
        # The counters are read on the local-only port (the public /healthz has only a status).
        "http": {"host": "127.0.0.1", "port": http_port, "local_port": local_port},
    }))
    server = Server(work / "server.yaml", f"http://127.0.0.1:{local_port}", work / "server.log")
    messages = args.messages * args.gateways
    total = messages * args.readings
    groups = [list(range(g, min(g + 10, args.gateways))) for g in range(0, args.gateways, 10)]
    publishers = [multiprocessing.Process(target=publish, args=(broker.port, group,
                                                                 args.messages, args.readings))
                  for group in groups]
    try:
        server.start()  # creates the persistent sessions and subscriptions
        if args.mode == "backlog":
            server.stop()
            for p in publishers:
                p.start()
            for p in publishers:
                p.join()
            server.start()
        else:
            for p in publishers:
                p.start()
        t0 = time.perf_counter()
        cpu0 = server.cpu_s()
        figures: dict[str, Any] = {}
        while time.perf_counter() - t0 < args.timeout:
            figures = server.sample()
            written = figures.get("influx.written_lines", 0)
            spooled = figures.get("influx.spooled_lines", 0)
            done = figures.get("ingest.settled", 0) >= messages and not figures.get(
                "ingest.unacked", 1)
            if done and (written >= total if args.influx == "up" else spooled >= total):
                break
            time.sleep(0.1)
        elapsed = time.perf_counter() - t0
        cpu_s = server.cpu_s() - cpu0
        for p in publishers:
            p.join()
        stored = store.stored_readings() if args.influx == "up" else 0
        return {
            "bench": "server-ingest", "mode": args.mode, "influx": args.influx,
            "timeseries": store.kind,
            "gateways": args.gateways, "messages": messages, "readings_per_message": args.readings,
            "readings": total, "seconds": round(elapsed, 2),
            "readings_per_s": round(total / elapsed), "messages_per_s": round(messages / elapsed),
            "stored_in_influx": stored, "spooled_lines": figures.get("influx.spooled_lines", 0),
            "acks": figures.get("mqtt.acks", 0), "settled": figures.get("ingest.settled", 0),
            "redelivered": figures.get("ingest.redelivered", 0),
            # The server's own CPU while it worked (a busy host slows the rate more than this).
            "server_cpu_us_per_message": round(cpu_s / messages * 1e6, 1),
            "server_rss_mb_peak": round(server.rss_peak / 2**20, 1),
            "receive_maximum": args.receive_maximum, "batch_size": args.batch_size,
            "machine": {"cpus": psutil.cpu_count(), "python": platform.python_version()},
        }
    finally:
        server.stop()
        store.stop()
        broker.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000, help="messages per gateway")
    parser.add_argument("--readings", type=int, default=100, help="readings per message")
    parser.add_argument("--gateways", type=int, default=20)
    parser.add_argument("--mode", choices=["backlog", "live"], default="backlog")
    parser.add_argument("--influx", choices=["up", "down"], default="up")
    parser.add_argument("--timeseries", choices=["influxdb", "victoriametrics"],
                        default="influxdb", help="the store the server writes to")
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--receive-maximum", type=int, default=1000)
    parser.add_argument("--spool-mb", type=float, default=4096)
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args()
    print(json.dumps(run(args)), flush=True)


if __name__ == "__main__":
    main()
