"""scripts/bench: measure what docs/benchmarks.md reports. Never run by the test suite.

  edge-rss     the edge agent with ten Modbus sensors polled every second: RSS and CPU
  decode       protocol decode throughput (readings/s), no I/O

The other benches live beside this file and scripts/bench runs them all: bench_outbox.py,
bench_server.py, bench_latency.py, bench_lifecycle.py, bench_access.py, bench_camera.py.

Each prints one JSON line per result so runs can be compared.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil

from gridsense_devtools.ports import free_port
from gridsense_devtools.processes import spawn, stop_process
from gridsense_devtools.services import Mosquitto
from gridsense_edge.service.unit import environment
from gridsense_protocol import Reading, Telemetry, decode, encode

BIN = Path(sys.executable).parent


def machine() -> dict[str, object]:
    return {
        "cpus": psutil.cpu_count(),
        "python": platform.python_version(),
        "cpu": platform.processor() or platform.machine(),
    }


def report(name: str, **figures: object) -> None:
    print(json.dumps({"bench": name, **figures, "machine": machine()}), flush=True)


def telemetry_batch(gateway: str, seq: int, size: int, start: datetime) -> Telemetry:
    readings = [
        Reading(
            point=f"{gateway}.p{i % 50:02d}",
            metric="temperature",
            value=20 + (i % 100) / 10,
            unit="°C",
            ts=start + timedelta(microseconds=seq * size + i),
        )
        for i in range(size)
    ]
    return Telemetry(gateway=gateway, seq=seq, ts=start, readings=readings)


def bench_decode(messages: int, batch: int) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    payloads = [encode(telemetry_batch("gw-bench", s, batch, start)) for s in range(messages)]
    topic = "gridsense/v1/gw-bench/telemetry"
    t0 = time.perf_counter()
    for payload in payloads:
        decode(topic, payload)
    elapsed = time.perf_counter() - t0
    report(
        "decode",
        readings=messages * batch,
        seconds=round(elapsed, 3),
        readings_per_s=round(messages * batch / elapsed),
    )


def bench_edge_rss(seconds: float, sensors: int, metrics: bool = False,
                   plain: bool = False, launcher: list[str] | None = None) -> None:
    """``metrics``: with the agent's /metrics on, scraped every second while sampling (a
    scrape every 15-30 s is the usual; every second shows the rendering's cost plainly).
    The agent runs with the environment its systemd unit gives it (``plain``: without);
    ``launcher`` replaces ``gridsense-edge`` in its command line."""
    with tempfile.TemporaryDirectory(prefix="gridsense-bench-") as tmp:
        work = Path(tmp)
        broker = Mosquitto(work / "mqtt", free_port()).start()
        link = work / "tty0"
        scenario = {
            "sensors": [
                {
                    "slave": s + 1,
                    "profile": "xy-md02",
                    "values": {"temperature": 20.0 + s, "humidity": 50.0},
                    "noise": 0.3,
                }
                for s in range(sensors)
            ]
        }
        (work / "scenario.yaml").write_text(json.dumps(scenario))
        devices = [
            {
                "type": "modbus_temperature",
                "point": f"gw-bench.t{s + 1:02d}",
                "bus": "rs485-0",
                "slave": s + 1,
                "profile": "xy-md02",
                "poll_interval_s": 1,
                "refresh_interval_s": 10,
            }
            for s in range(sensors)
        ]
        metrics_port = free_port()
        config = {
            "gateway": {"id": "gw-bench", "state_dir": str(work / "state")},
            "mqtt": {"host": "127.0.0.1", "port": broker.port},
            "health": {"interval_s": 10},
            **({"metrics": {"port": metrics_port}} if metrics else {}),
            "buses": [{"id": "rs485-0", "port": str(link), "timeout_s": 0.3}],
            "devices": devices,
            "rules": [
                {
                    "type": "over_temperature",
                    "points": ["*"],
                    "threshold": 60,
                    "hysteresis": 2,
                    "min_duration_s": 5,
                    "severity": "major",
                }
            ],
        }
        (work / "gateway.yaml").write_text(json.dumps(config))
        sim = spawn(
            [
                str(BIN / "gridsense-edge"),
                "simulate",
                "modbus",
                "--scenario",
                str(work / "scenario.yaml"),
                "--link",
                str(link),
            ],
            work / "simulator.log",
        )
        edge = None
        try:
            deadline = time.monotonic() + 30
            while not link.exists() and time.monotonic() < deadline:
                time.sleep(0.1)
            env = {} if plain else environment(work / "state")
            edge = spawn(
                [*(launcher or [str(BIN / "gridsense-edge")]), "run", "--config",
                 str(work / "gateway.yaml")],
                work / "edge.log", env=env,
            )
            proc = psutil.Process(edge.pid)
            time.sleep(10)  # start-up and imports are not the steady state
            cpu0 = proc.cpu_times()
            t0 = time.monotonic()
            rss, uss, pss = [], [], []
            while time.monotonic() - t0 < seconds:
                full = proc.memory_full_info()
                rss.append(full.rss)
                uss.append(full.uss)
                pss.append(full.pss)
                if metrics:
                    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics",
                                                timeout=5) as page:
                        page.read()
                time.sleep(1)
            cpu1 = proc.cpu_times()
            wall = time.monotonic() - t0
            cpu = (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / wall * 100
            report(
                "edge-rss",
                sensors=sensors,
                poll_interval_s=1,
                metrics_scraped_every_s=1 if metrics else None,
                seconds=round(wall),
                rss_mb_max=round(max(rss) / 2**20, 1),
                rss_mb_median=_median_mb(rss),
                uss_mb_median=_median_mb(uss),
                pss_mb_median=_median_mb(pss),
                cpu_percent_of_one_core=round(cpu, 2),
                environment=" ".join(f"{k}={v}" for k, v in env.items()
                                     if k != "PYTHONPYCACHEPREFIX") or None,
            )
        finally:
            for p in (edge, sim):
                if p is not None:
                    stop_process(p, timeout=10)
            broker.stop()


def _median_mb(samples: list[int]) -> float:
    return round(sorted(samples)[len(samples) // 2] / 2**20, 1)


def main() -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench.py", description=__doc__.splitlines()[0])
    parser.add_argument(
        "which", nargs="*", default=["decode", "edge-rss"], choices=["decode", "edge-rss"]
    )
    parser.add_argument("--seconds", type=float, default=60, help="edge-rss sampling time")
    parser.add_argument("--metrics", action="store_true",
                        help="edge-rss with the agent's /metrics on, scraped every second")
    parser.add_argument("--plain", action="store_true",
                        help="edge-rss without the systemd unit's environment "
                             "(PYTHONOPTIMIZE, MALLOC_ARENA_MAX)")
    parser.add_argument("--batch", type=int, default=500, help="readings per telemetry message")
    args = parser.parse_args()
    for which in args.which:
        if which == "decode":
            bench_decode(2000, args.batch)
        else:
            bench_edge_rss(args.seconds, 10, args.metrics, args.plain)
    return 0


if __name__ == "__main__":
    sys.exit(main())
