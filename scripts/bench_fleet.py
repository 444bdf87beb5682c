"""A fleet of gateways against one server, through the real protocol: each gateway publishes one
telemetry message a second (its points' readings batched, as the agent does), an incident now
and then, and listens on its own ``ack`` topic for the server's end-to-end acknowledgement.
Not a test: nothing here is asserted.

    .venv/bin/python scripts/bench_fleet.py [--gateways 2000] [--points 10] [--seconds 60]
                                            [--incidents-per-s 0.5] [--publishers 4]
                                            [--workers 2] [--phones 300]

``--workers N``: ``gridsense-server run --workers N`` on a fresh PostgreSQL database (also
``--database postgres`` with one); ``--phones N``: live streams as the control room, spread
over the workers by the shared port, timing each incident event from its device time.

A private Mosquitto, a private InfluxDB 1.x and ``gridsense-server run`` as a process of its own
(SQLite). Publisher processes each carry a share of the gateways over one MQTT connection (the
broker sees one client per process, not one per gateway: what is measured is the server's side
— ingest, per-gateway sequence tracking, and one ``Settled`` per gateway a few times a second).

Reports: the rate offered and the rate settled; the end-to-end acknowledgement latency (publish
→ the ``Settled`` naming the message, p50/p99, as the gateway sees it); incident → settled;
server CPU and peak RSS; InfluxDB and SQLite growth per reading and extrapolated per day (over a
short run InfluxDB's growth is mostly its write-ahead log, before compaction: an upper bound).
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import platform
import shutil
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import psutil
from bench_fleet_cluster import (
    STAFF_YAML,
    Pool,
    cpu_seconds,
    drop_database,
    fresh_database,
    phones,
)
from bench_server import Server
from demo_store import demo_store

from gridsense_devtools.ports import free_port
from gridsense_devtools.services import Mosquitto
from gridsense_protocol import (
    Incident,
    Kind,
    Reading,
    Severity,
    Telemetry,
    decode,
    encode,
    topic_for,
    utc_now,
)

BIN = Path(sys.executable).parent
PG_DATABASE = "gridsense_bench_fleet"


def gateway(g: int) -> str:
    return f"gw-f{g:04d}"


def registry(gateways: int, points: int) -> str:
    rows = "\n".join(
        f"  - {{id: {gateway(g)}.p{p:02d}, gateway: {gateway(g)}, grid: g01, name: p{p}}}"
        for g in range(gateways) for p in range(points)
    )
    return ("streets:\n  - {id: s, name: s, communities: [{id: c, name: c, grids: "
            f"[{{id: g01, name: g}}]}}]}}\npoints:\n{rows}\n{STAFF_YAML}")


def fleet(port: int, gateways: list[int], points: int, seconds: float, incident_every: int,
          acks: bool, results: Any) -> None:
    """One publisher process: its gateways publish once a second; acks timed as they come."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    sent: dict[tuple[str, int], float] = {}  # (gateway, seq) -> monotonic publish time
    incidents: set[tuple[str, int]] = set()
    latencies: list[float] = []
    incident_latencies: list[float] = []

    def on_message(_c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        now = time.monotonic()
        message = decode(msg.topic, msg.payload)
        for first, last in getattr(message, "ranges", []):
            for seq in range(first, last + 1):
                key = (message.gateway, seq)
                at = sent.pop(key, None)
                if at is not None:
                    latencies.append(now - at)
                    if key in incidents:
                        incident_latencies.append(now - at)

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-fleet-{gateways[0]}",
                         protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.on_message = on_message
    client.connect("127.0.0.1", port)
    topics = [(topic_for(gateway(g), Kind.ACK), 1) for g in gateways]
    for start in range(0, len(topics), 100):
        client.subscribe(topics[start:start + 100])
    client.loop_start()
    time.sleep(1.0)
    seqs = dict.fromkeys(gateways, 0)
    offered = behind = 0
    t0 = time.monotonic()
    tick = 0
    while (now := time.monotonic()) - t0 < seconds:
        ts = utc_now()
        for g in gateways:
            name = gateway(g)
            seqs[g] += 1
            seq = seqs[g]
            readings = [Reading(point=f"{name}.p{p:02d}", metric="temperature",
                                value=20.0 + (seq + p) % 70 / 10, unit="°C", ts=ts)
                        for p in range(points)]
            sent[(name, seq)] = time.monotonic()
            client.publish(topic_for(name, Kind.TELEMETRY), encode(Telemetry(
                gateway=name, seq=seq, ts=ts, readings=readings)), qos=1)
            offered += 1
            if incident_every and (g * 7919 + tick) % incident_every == 0:
                seqs[g] += 1
                key = (name, seqs[g])
                incidents.add(key)
                sent[key] = time.monotonic()
                client.publish(topic_for(name, Kind.INCIDENT), encode(Incident(
                    gateway=name, seq=seqs[g], ts=ts + timedelta(microseconds=1),
                    point=f"{name}.p00", type="over_temperature", severity=Severity.MAJOR,
                    value=80.0, threshold=60.0, unit="°C")), qos=1)
                offered += 1
        tick += 1
        wait = t0 + tick - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        else:
            behind += 1  # this process could not keep one message per gateway a second
    deadline = time.monotonic() + (60 if acks else 0)
    while sent and time.monotonic() < deadline:
        time.sleep(0.2)
    client.loop_stop()
    client.disconnect()
    results.put({"offered": offered, "ticks": tick, "ticks_late": behind, "unconfirmed": len(sent),
                 "latencies": latencies, "incident_latencies": incident_latencies,
                 "elapsed": now - t0})


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 1)


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def sqlite_bytes(work: Path) -> int:
    return sum(p.stat().st_size for p in work.glob("server.db*"))


def database_bytes(db_url: str, work: Path) -> int:
    if db_url.startswith("sqlite"):
        return sqlite_bytes(work)
    from sqlalchemy import create_engine, text

    engine = create_engine(db_url)
    try:
        with engine.connect() as connection:
            return int(connection.execute(
                text("SELECT pg_database_size(current_database())")).scalar_one())
    finally:
        engine.dispose()


def run(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="gridsense-bench-fleet-"))
    broker = Mosquitto(work / "mqtt", free_port(),
                       extra_config=["max_queued_messages 0", "max_inflight_messages 0"]).start()
    store = demo_store("influxdb-v1", work, free_port(), free_port())
    store.start()
    (work / "registry.yaml").write_text(registry(args.gateways, args.points))
    http_port, local_port = free_port(), free_port()
    postgres = args.workers > 1 or args.database == "postgres"
    db_url = (fresh_database(args.postgres, PG_DATABASE) if postgres
              else f"sqlite:///{work / 'server.db'}")
    (work / "server.yaml").write_text(json.dumps({
        "mqtt": {"host": "127.0.0.1", "port": broker.port, "client_id": "bench-fleet-server",
                 "settled_ack_interval_s": args.ack_interval,
                 "settled_acks": not args.no_settled_acks},
        "timeseries": store.server_section(url=store.url),
        "database": {"url": db_url},
        "registry": {"file": str(work / "registry.yaml")},
        "incidents": {"late_after_s": 3600},
        "http": {"host": "127.0.0.1", "port": http_port, "local_port": local_port},
    }))
    server = (Pool(work / "server.yaml", local_port, work / "server.log", args.workers)
              if args.workers > 1 else
              Server(work / "server.yaml", f"http://127.0.0.1:{local_port}", work / "server.log"))
    share = -(-args.gateways // args.publishers)
    groups = [list(range(g, min(g + share, args.gateways)))
              for g in range(0, args.gateways, share)]
    # One incident per this many gateway-seconds: --incidents-per-s across the fleet.
    every = round(args.gateways / args.incidents_per_s) if args.incidents_per_s > 0 else 0
    results: Any = multiprocessing.Queue()
    publishers = [multiprocessing.Process(
        target=fleet, args=(broker.port, group, args.points, args.seconds, every,
                            not args.no_settled_acks, results))
        for group in groups]
    phone_results: Any = multiprocessing.Queue()
    phone_procs = [multiprocessing.Process(
        target=phones, args=(f"http://127.0.0.1:{http_port}", n, args.seconds + 5,
                             phone_results))
        for n in split_evenly(args.phones, 2)]
    try:
        server.start()
        for p in phone_procs:
            p.start()
        influx_dir = work / "influxdb"
        sizes0 = (folder_bytes(influx_dir), database_bytes(db_url, work))
        pid = server.proc.pid if server.proc else None
        cpu0 = cpu_seconds(pid) if pid else None
        settled0 = server.sample().get("ingest.settled", 0)
        t0 = time.monotonic()
        for p in publishers:
            p.start()
        while any(p.is_alive() for p in publishers) and time.monotonic() - t0 < args.seconds:
            server.sample()
            time.sleep(1.0)
        figures = server.sample()
        elapsed = time.monotonic() - t0
        cpu = cpu_seconds(pid) if pid else None
        settled = figures.get("ingest.settled", 0) - settled0
        parts = [results.get(timeout=args.seconds + 120) for _ in publishers]
        for p in publishers:
            p.join()
        time.sleep(2.0)  # InfluxDB's cache and WAL settle a little before sizing
        sizes1 = (folder_bytes(influx_dir), database_bytes(db_url, work))
        phone_parts = [phone_results.get(timeout=60) for _ in phone_procs]
        phone_latencies = [x for part in phone_parts for x in part["latencies"]]
        per_phone = [n for part in phone_parts for n in part["received"]]
        offered = sum(part["offered"] for part in parts)
        readings = args.gateways * args.points * min(part["ticks"] for part in parts)
        latencies = [x for part in parts for x in part["latencies"]]
        incident_latencies = [x for part in parts for x in part["incident_latencies"]]
        per_day = 86400 * args.gateways * args.points  # readings a day at 1/s a point
        influx_per_reading = (sizes1[0] - sizes0[0]) / max(readings, 1)
        sql_per_message = (sizes1[1] - sizes0[1]) / max(offered, 1)
        server_cpu = ((cpu - cpu0) / elapsed * 100 if cpu is not None and cpu0 is not None
                      else None)
        return {
            "bench": "fleet", "workers": args.workers,
            "database": "postgresql" if postgres else "sqlite", "gateways": args.gateways,
            "points_per_gateway": args.points,
            "seconds": round(elapsed, 1), "publishers": len(publishers),
            "offered_messages": offered,
            "offered_messages_per_s": round(offered / elapsed),
            "offered_readings_per_s": round(readings / elapsed),
            "settled_messages_per_s_during_run": round(settled / elapsed),
            "settled_acks": not args.no_settled_acks, "ack_interval_s": args.ack_interval,
            "publisher_ticks_late": sum(part["ticks_late"] for part in parts),
            "unconfirmed_60s_after_the_run": sum(part["unconfirmed"] for part in parts),
            "ack_latency_ms": {"p50": percentile(latencies, 0.5),
                               "p99": percentile(latencies, 0.99),
                               "mean": round(statistics.fmean(latencies) * 1000, 1)
                               if latencies else None, "n": len(latencies)},
            "incident_ack_latency_ms": {"p50": percentile(incident_latencies, 0.5),
                                        "p99": percentile(incident_latencies, 0.99),
                                        "n": len(incident_latencies)},
            "phones": {"n": args.phones, "failed": sum(p["failed"] for p in phone_parts),
                       "incident_events_min": min(per_phone, default=0),
                       "incident_events_max": max(per_phone, default=0),
                       "latency_ms": {"p50": percentile(phone_latencies, 0.5),
                                      "p99": percentile(phone_latencies, 0.99)}},
            "server_cpu_percent_of_one_core": round(server_cpu, 1) if server_cpu else None,
            "server_rss_mb_peak": round(server.rss_peak / 2**20, 1),
            "acks_published": figures.get("acks.published", 0),
            "influx_bytes_per_reading": round(influx_per_reading, 2),
            "influx_gb_per_day_extrapolated": round(influx_per_reading * per_day / 1e9, 2),
            "database_bytes_per_message": round(sql_per_message, 2),
            "stored_readings": store.stored_readings(),
            "machine": {"cpus": psutil.cpu_count(), "load_1m": round(psutil.getloadavg()[0], 1),
                        "python": platform.python_version()},
        }
    finally:
        for p in phone_procs:
            if p.is_alive():
                p.kill()
        server.stop()
        store.stop()
        broker.stop()
        if postgres:
            drop_database(args.postgres, PG_DATABASE)
        shutil.rmtree(work, ignore_errors=True)


def split_evenly(total: int, parts: int) -> list[int]:
    """``total`` in up to ``parts`` non-empty shares."""
    return [n for n in (total // parts + (1 if i < total % parts else 0)
                        for i in range(parts)) if n]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gateways", type=int, default=2000)
    parser.add_argument("--points", type=int, default=10, help="points per gateway, 1 reading/s")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--incidents-per-s", type=float, default=0.5, help="across the fleet")
    parser.add_argument("--publishers", type=int, default=4, help="publisher processes")
    parser.add_argument("--ack-interval", type=float, default=0.25,
                        help="the server's mqtt.settled_ack_interval_s")
    parser.add_argument("--workers", type=int, default=1,
                        help="server processes (run --workers N; PostgreSQL)")
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite",
                        help="one worker's database (several always use PostgreSQL)")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres",
                        help="the PostgreSQL server the bench makes its database on")
    parser.add_argument("--phones", type=int, default=0,
                        help="live WebSocket streams receiving the incidents")
    parser.add_argument("--no-settled-acks", action="store_true",
                        help="the server sends no Settled (what end-to-end acks cost)")
    print(json.dumps(run(parser.parse_args())))


if __name__ == "__main__":
    main()
