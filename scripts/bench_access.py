"""scripts/bench access: the door's latencies (docs/benchmarks.md, "Access control").

  decision   card presented -> decision -> lock command at the reader: a libosdp reader
             simulator on a pty and the agent's OSDP driver (libosdp control panel over
             pyserial) with a credential copy of --credentials residents, in one process so
             both ends read one clock. Target p99 <= 100 ms.
  pass       the same path for a compact electronic pass (QR ``GS1:P:``, 62 characters) the
             reader passes through as raw card data: MAC check, record, revocation and use
             count (a limited pass: one write) in the same copy (--residents pass records).
  server     access event -> server: AccessEvents published over a private Mosquitto to
             ``gridsense-server run`` (SQLite, private InfluxDB); latency = the access log
             row's received_at minus the event's ts, stamped at publish time.

Prints one JSON line per result. Never run by the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from bench import report
from bench_server import Server

from gridsense_devtools.ports import free_port
from gridsense_devtools.services import InfluxDB, Mosquitto
from gridsense_edge.clock import ClockTrust
from gridsense_edge.configtypes import default_profiles_dir
from gridsense_edge.drivers.base import DriverContext
from gridsense_edge.drivers.osdp.config import OsdpReaderConfig
from gridsense_edge.drivers.osdp.credentials import (
    Credential,
    CredentialStore,
    card_hash,
    credential_store,
)
from gridsense_edge.drivers.osdp.driver import OsdpBus
from gridsense_edge.drivers.osdp.passbook import PassRecord, PassUpdate
from gridsense_edge.simulator.osdp import OsdpReaderSimulator, SimulatedReader
from gridsense_protocol import AccessEvent, AccessResult, encode, passes, topic_for, utc_now

SITE_KEY = bytes(range(32))


def percentiles(values_ms: list[float]) -> dict[str, float]:
    ordered = sorted(values_ms)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)

    return {"n": len(ordered), "p50_ms": at(0.5), "p95_ms": at(0.95), "p99_ms": at(0.99),
            "max_ms": round(ordered[-1], 1), "mean_ms": round(statistics.fmean(ordered), 1)}


async def decision_latency(work: Path, swipes: int, residents: int, gap_s: float,
                           passes: bool = False) -> None:
    key = os.urandom(16)
    key_file = work / "reader.key"
    key_file.write_text(key.hex())
    os.chmod(key_file, 0o600)
    link = work / "ttyOSDP"
    sim = OsdpReaderSimulator(link, [SimulatedReader(1, key)])
    sim.start()
    try:
        config = OsdpReaderConfig(type="osdp_reader", point="bench.door", port=str(link),
                                  address=1, key_file=key_file, door="d1",
                                  denied_burst=100)
        context = DriverContext(gateway="bench", emit=lambda *_: None, buses={},
                                profiles_dir=default_profiles_dir(),
                                raise_incident=lambda _i: "", record_access=lambda _r: "",
                                state_dir=work / "state")
        store = credential_store(context.shared, work / "state")
        store.apply_snapshot(1, SITE_KEY, [
            Credential(f"r{i}", card_hash(SITE_KEY, str(100000 + i)), None, None, None,
                       ("d1",), ()) for i in range(residents)])
        texts = _pass_texts(store, residents, swipes) if passes else []
        bus = OsdpBus(str(link), [config], context, store, ClockTrust("rtc"))
        task = asyncio.create_task(bus.run())
        while not (bus.readers[0].online and bus.readers[0].sc):  # noqa: ASYNC110 - no event
            await asyncio.sleep(0.05)
        latencies: list[float] = []
        for i in range(swipes):
            since = time.monotonic()
            if passes:
                sim.present_scan(1, texts[i])
            else:
                sim.present_card(1, 100000 + (i * 7919) % residents)
            command = await asyncio.to_thread(
                sim.wait_for_command, lambda c: c.name == "output", 5.0, since)
            if command is not None:
                latencies.append((command.at - since) * 1000)
            await asyncio.sleep(gap_s)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        store.close()
        report("access-pass" if passes else "access-decision", residents=residents,
               lost=swipes - len(latencies),
               **percentiles(latencies))
    finally:
        sim.stop()


def _pass_texts(store: CredentialStore, residents: int, swipes: int) -> list[str]:
    """One compact pass per resident (a 20-use limit: each grant writes its count), synced
    into the copy with its site key; the texts shown, in turn."""
    now = int(time.time())
    site = passes.new_site_key()
    items = [passes.Pass(passes.new_pass_id(), now - 60, now + 3600, key_id=1, holder=f"r{i}",
                         uses=20, doors=("d1",)) for i in range(residents)]
    store.apply_snapshot(2, SITE_KEY, [], PassUpdate(
        {"public": {}, "site": {1: site.hex()}},
        [PassRecord(p.pass_id, p.kind, p.holder, p.not_before, p.not_after, p.uses, p.doors,
                    p.buildings) for p in items]))
    return [passes.mac(items[(i * 7919) % residents], site) for i in range(swipes)]


def server_latency(work: Path, events: int, rate: float) -> None:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    broker = Mosquitto(work / "mqtt", free_port()).start()
    influx = InfluxDB(work / "influx", free_port()).start()
    (work / "registry.yaml").write_text(
        "streets:\n  - {id: s, name: s, communities: [{id: c, name: c, grids: "
        "[{id: g01, name: g}]}]}\npoints:\n  - {id: gw-b.door, gateway: gw-b, grid: g01, "
        "name: door}\n")
    http_port = free_port()
    (work / "server.yaml").write_text(json.dumps({
        "mqtt": {"host": "127.0.0.1", "port": broker.port, "client_id": "bench-access"},
        "influxdb": {"url": influx.url, "database": "gridsense", "flush_interval_s": 0.2},
        "database": {"url": f"sqlite:///{work / 'server.db'}"},
        "registry": {"file": str(work / "registry.yaml")},
        "http": {"host": "127.0.0.1", "port": http_port},
    }))
    server = Server(work / "server.yaml", f"http://127.0.0.1:{http_port}", work / "server.log")
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="gw-b", protocol=mqtt.MQTTv5)
    try:
        server.start()
        client.connect("127.0.0.1", broker.port)
        client.loop_start()
        for seq in range(1, events + 1):
            message = AccessEvent(gateway="gw-b", seq=seq, ts=utc_now(), point="gw-b.door",
                                  door="d1", result=AccessResult.GRANTED, method="card",
                                  credential=f"r{seq % 50}", card="0123456789abcdef")
            client.publish(topic_for("gw-b", message.kind), encode(message), qos=1)
            time.sleep(1 / rate)
        deadline = time.monotonic() + 60
        db = sqlite3.connect(work / "server.db")
        rows: list[tuple[str, str]] = []
        while time.monotonic() < deadline:
            rows = db.execute("SELECT ts, received_at FROM access_events").fetchall()
            if len(rows) >= events:
                break
            time.sleep(0.2)
        latencies = [(datetime.fromisoformat(r) - datetime.fromisoformat(t)).total_seconds()
                     * 1000 for t, r in rows]
        report("access-server", rate_per_s=rate, lost=events - len(rows),
               **percentiles(latencies))
    finally:
        client.loop_stop()
        server.stop()
        influx.stop()
        broker.stop()


def main() -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench_access.py",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("which", nargs="*", default=["decision", "server"],
                        choices=["decision", "pass", "server"])
    parser.add_argument("--swipes", type=int, default=300)
    parser.add_argument("--residents", type=int, default=2000)
    parser.add_argument("--gap", type=float, default=0.1, help="seconds between swipes")
    parser.add_argument("--events", type=int, default=500)
    parser.add_argument("--rate", type=float, default=50.0, help="access events per second")
    args = parser.parse_args()
    for which in args.which:
        with tempfile.TemporaryDirectory(prefix="gridsense-bench-access-") as tmp:
            if which in ("decision", "pass"):
                asyncio.run(decision_latency(Path(tmp), args.swipes, args.residents, args.gap,
                                             passes=which == "pass"))
            else:
                server_latency(Path(tmp), args.events, args.rate)
    return 0


if __name__ == "__main__":
    sys.exit(main())
