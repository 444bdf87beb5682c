"""Incident latency probe (not a test: no timing is ever asserted).

    .venv/bin/python tests/server/bench_incident_latency.py [--incidents 3000] [--rate 1000]

A publisher process sends incidents at a fixed rate (device ts = send time) → private
Mosquitto → the server (SQLite) → a control user's WebSocket; prints p50/p99 of
device time → WebSocket receipt. The WebSocket client shares the server's process and loop,
so the figures are pessimistic.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx  # noqa: E402
from server_helpers import REGISTRY_YAML, async_wait_until, write_server_config  # noqa: E402
from websockets.asyncio.client import connect  # noqa: E402

from gridsense_server.app import ServerApp  # noqa: E402
from gridsense_server.config import load_server_config  # noqa: E402
from gridsense_server.logs import setup_logging  # noqa: E402

from devservices import InfluxDB, Mosquitto, free_port  # noqa: E402

POINTS = ("gw-01.boiler", "gw-01.pump")


def _publish(port: int, count: int, rate: float) -> None:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from gridsense_protocol import Incident, Kind, Severity, encode, topic_for, utc_now

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="gw-01", protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(1000)
    client.connect("127.0.0.1", port)
    client.loop_start()
    start = time.perf_counter()
    infos = []
    for i in range(count):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        message = Incident(gateway="gw-01", seq=i + 1, ts=utc_now(), point=POINTS[i % 2],
                           type="over_temperature", severity=Severity.MAJOR, value=70.0)
        infos.append(client.publish(topic_for("gw-01", Kind.INCIDENT), encode(message), qos=1))
    for info in infos:
        info.wait_for_publish(60)
    client.loop_stop()
    client.disconnect()


async def measure(count: int, rate: float) -> None:
    folder = Path(tempfile.mkdtemp(prefix="gs-latency-"))
    broker = Mosquitto(folder / "mosquitto", free_port(),
                       extra_config=["max_queued_messages 100000"]).start()
    influx = InfluxDB(folder / "influx", free_port()).start()
    (folder / "registry.yaml").write_text(REGISTRY_YAML, encoding="utf-8")
    config = write_server_config(folder, mqtt_port=broker.port, influx_url=influx.url,
                                 database="latency")
    app = ServerApp(load_server_config(config))
    stop = asyncio.Event()
    task = asyncio.create_task(app.run(stop))
    try:
        await app.ready.wait()
        assert app.http_url is not None
        await async_wait_until(app.mqtt_subscribed, 30, "subscribed")
        async with httpx.AsyncClient(base_url=app.http_url, trust_env=False) as http:
            token = (await http.post("/api/v1/auth/token", json={
                "username": "control", "password": "ctl"})).json()["access_token"]
        url = app.http_url.replace("http://", "ws://") + f"/api/v1/stream?token={token}"
        latencies: list[float] = []
        async with connect(url, proxy=None, max_queue=None) as ws:
            publisher = multiprocessing.Process(target=_publish, args=(broker.port, count, rate))
            publisher.start()
            while len(latencies) < count:
                event = json.loads(await asyncio.wait_for(ws.recv(), 60))
                if event.get("event") not in ("opened", "updated"):
                    continue  # escalation steps and other work-order changes: not a device event
                device_ts = datetime.fromisoformat(event["incident"]["last_seen_at"])
                latencies.append((datetime.now(UTC) - device_ts).total_seconds() * 1000)
            publisher.join()
        latencies.sort()
        print(f"{count} incidents at {rate:g}/s: p50={latencies[count // 2]:.1f} ms "
              f"p99={latencies[int(count * 0.99)]:.1f} ms max={latencies[-1]:.1f} ms "
              f"live.dropped_events={app.counters.get('live.dropped_events')}")
    finally:
        stop.set()
        await task
        influx.stop()
        broker.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--incidents", type=int, default=3000)
    parser.add_argument("--rate", type=float, default=1000.0, help="incidents per second")
    args = parser.parse_args()
    setup_logging("WARNING")
    asyncio.run(measure(args.incidents, args.rate))


if __name__ == "__main__":
    main()
