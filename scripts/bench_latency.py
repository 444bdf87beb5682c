"""Incident latency probe (not a test: no timing is ever asserted).

    scripts/bench latency [--incidents 3000] [--rate 1000]
        [--scenario both|repeats|points] [--points 500]

A publisher process sends incidents at a fixed rate (device ts = send time) → private
Mosquitto → the server (SQLite) → a control user's WebSocket; prints p50/p99 of
device time → WebSocket receipt. The WebSocket client shares the server's process and loop,
so the figures are pessimistic.

Two scenarios, each on a fresh server, one JSON line each:
- ``repeats`` (the first line, the scenario of older figures): every incident goes to one of two
  points with one type, so all but the first two are repeats folded into an open incident.
- ``points``: incidents spread at random (fixed seed) over ``--points`` registered points in
  three grids, two types, mixed severities — about a third open a new incident (history row,
  SLA clocks, escalation step, the gateway_offline check for sensor_offline), the rest repeat.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import random
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
from websockets.asyncio.client import connect

from gridsense_devtools.community import REGISTRY_YAML
from gridsense_devtools.ports import free_port
from gridsense_devtools.processes import async_wait_until
from gridsense_devtools.server_config import write_server_config
from gridsense_devtools.services import InfluxDB, Mosquitto
from gridsense_server.app import ServerApp
from gridsense_server.config import load_server_config
from gridsense_server.logs import setup_logging

POINTS = ("gw-01.boiler", "gw-01.pump")
MIX_GRIDS = ("g01", "g01-a", "g02")
MIX_TYPES = ("over_temperature", "sensor_offline")
MIX_SEED = 6


def _mix_points(points: int) -> list[str]:
    return [f"gw-01.m{i:04d}" for i in range(points)]


def _registry(points: int) -> str:
    """The test registry plus the scenario's points (appended to its ``points:`` list)."""
    extra = "".join(f"  - {{id: {p}, gateway: gw-01, grid: {MIX_GRIDS[i % len(MIX_GRIDS)]}, "
                    f"name: m{i}}}\n" for i, p in enumerate(_mix_points(points)))
    head, sep, tail = REGISTRY_YAML.partition("staff:\n")
    return head + extra + sep + tail


def _incidents(count: int, points: int) -> list[tuple[str, str, str]]:
    """(point, type, severity) for each message; points == 0: the two-point repeats."""
    if points == 0:
        return [(POINTS[i % 2], "over_temperature", "major") for i in range(count)]
    rng = random.Random(MIX_SEED)
    names = _mix_points(points)
    return [(rng.choice(names), rng.choice(MIX_TYPES),
             rng.choices(("minor", "major", "critical"), (6, 3, 1))[0]) for _ in range(count)]


def _publish(port: int, count: int, rate: float, points: int) -> None:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from gridsense_protocol import Incident, Kind, Severity, encode, topic_for, utc_now

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="gw-01", protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(1000)
    client.connect("127.0.0.1", port)
    client.loop_start()
    plan = _incidents(count, points)
    start = time.perf_counter()
    infos = []
    for i in range(count):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        point, type_, severity = plan[i]
        message = Incident(gateway="gw-01", seq=i + 1, ts=utc_now(), point=point, type=type_,
                           severity=Severity(severity), value=70.0)
        infos.append(client.publish(topic_for("gw-01", Kind.INCIDENT), encode(message), qos=1))
    for info in infos:
        info.wait_for_publish(60)
    client.loop_stop()
    client.disconnect()


async def measure(count: int, rate: float, points: int = 0) -> None:
    """One scenario on a fresh broker, InfluxDB and server; prints one line."""
    folder = Path(tempfile.mkdtemp(prefix="gs-latency-"))
    broker = Mosquitto(folder / "mosquitto", free_port(),
                       extra_config=["max_queued_messages 100000"]).start()
    influx = InfluxDB(folder / "influx", free_port()).start()
    (folder / "registry.yaml").write_text(_registry(points), encoding="utf-8")
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
            publisher = multiprocessing.Process(target=_publish,
                                                args=(broker.port, count, rate, points))
            publisher.start()
            while len(latencies) < count:
                event = json.loads(await asyncio.wait_for(ws.recv(), 60))
                if event.get("event") not in ("opened", "updated"):
                    continue  # escalation steps and other work-order changes: not a device event
                device_ts = datetime.fromisoformat(event["incident"]["last_seen_at"])
                latencies.append((datetime.now(UTC) - device_ts).total_seconds() * 1000)
            publisher.join()
        latencies.sort()
        # One JSON line per result, like every scripts/bench entry.
        print(json.dumps({
            "bench": "incident_latency", "scenario": "points" if points else "repeats",
            "incidents": count, "points": points or len(POINTS), "rate_per_s": rate,
            "opened": app.counters.get("incidents.opened"),
            "p50_ms": round(latencies[count // 2], 1),
            "p99_ms": round(latencies[int(count * 0.99)], 1), "max_ms": round(latencies[-1], 1),
            "live_dropped_events": app.counters.get("live.dropped_events"),
        }), flush=True)
    finally:
        stop.set()
        await task
        influx.stop()
        broker.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--incidents", type=int, default=3000)
    parser.add_argument("--rate", type=float, default=1000.0, help="incidents per second")
    parser.add_argument("--scenario", choices=("both", "repeats", "points"), default="both",
                        help="repeats: two points (the older figures); points: a mix")
    parser.add_argument("--points", type=int, default=500, help="points in the mix")
    args = parser.parse_args()
    setup_logging("WARNING")
    if args.scenario in ("both", "repeats"):
        asyncio.run(measure(args.incidents, args.rate))
    if args.scenario in ("both", "points"):
        asyncio.run(measure(args.incidents, args.rate, max(1, args.points)))


if __name__ == "__main__":
    main()
