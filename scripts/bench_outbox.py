"""Edge outbox benchmarks (issue 3). Never run by the test suite.

  cost     outbox cost per message, in process, on a real SQLite file: batched insert of
           telemetry, claim + ack + batched delete, and an incident's synchronous (fsync) commit
  replay   a backlog of N telemetry messages already in the outbox, drained by a real
           `gridsense-edge run` into a real Mosquitto (the fault tests' limits: receive maximum
           100); a subscriber checks every seq arrives, in order. Reports messages/s drained
           (PUBACKed: the outbox empty) and delivered (the subscriber has all), edge RSS.

Usage: .venv/bin/python scripts/bench_outbox.py [cost] [replay] [--messages 100000]
Each result is one JSON line.
"""

from __future__ import annotations

import argparse
import json
import platform
import sqlite3
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import psutil
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from gridsense_devtools.ports import free_port
from gridsense_devtools.processes import spawn, stop_process
from gridsense_devtools.services import Mosquitto
from gridsense_edge.transport.outbox import SqliteOutbox
from gridsense_edge.transport.publisher import Publisher
from gridsense_protocol import Reading

BIN = Path(sys.executable).parent
GW = "gw-bench"
BROKER_LIMITS = ["max_queued_messages 200000", "max_inflight_messages 100",
                 "message_size_limit 2097152"]


def report(name: str, **figures: object) -> None:
    machine = {"cpus": psutil.cpu_count(), "python": platform.python_version(),
               "sqlite": sqlite3.sqlite_version}
    print(json.dumps({"bench": name, **figures, "machine": machine}), flush=True)


def readings(n: int, count: int) -> list[Reading]:
    """What one telemetry message of the agent holds: a second of readings of ``count`` points."""
    ts = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=n)
    return [Reading(point=f"{GW}.t{i:02d}", metric="temperature", value=20 + (n + i) % 100 / 10,
                    unit="°C", ts=ts) for i in range(count)]


def fill(state_dir: Path, messages: int, per_message: int) -> tuple[float, int]:
    """Stores ``messages`` telemetry messages; returns (seconds spent in submit, payload bytes)."""
    outbox = SqliteOutbox(state_dir)
    publisher = Publisher(GW, outbox)
    # Encoding is the publisher's cost, not the outbox's: build the batches first.
    batches = [readings(n, per_message) for n in range(min(messages, 1000))]
    submit_s = 0.0
    size = 0
    for n in range(messages):
        t0 = time.perf_counter()
        message = publisher.telemetry(batches[n % len(batches)])
        submit_s += time.perf_counter() - t0
        size = len(message.payload)
    t0 = time.perf_counter()
    outbox.close()
    return submit_s + time.perf_counter() - t0, size


def bench_cost(messages: int, per_message: int) -> None:
    with tempfile.TemporaryDirectory(prefix="gridsense-bench-") as tmp:
        state = Path(tmp)
        # The encode cost alone, to subtract: Publisher.telemetry = encode + outbox.submit.
        batch = readings(0, per_message)
        encoder = Publisher(GW, _NullOutbox())  # type: ignore[arg-type]
        t0 = time.perf_counter()
        for _ in range(2000):
            encoder.telemetry(batch)
        encode_us = (time.perf_counter() - t0) / 2000 * 1e6
        insert_s, size = fill(state, messages, per_message)

        outbox = SqliteOutbox(state)
        t0 = time.perf_counter()
        claimed = 0
        while batch_ := outbox.claim(200):
            claimed += len(batch_)
            for m in batch_:
                outbox.ack(m)
        outbox.flush()
        drain_s = time.perf_counter() - t0
        assert claimed == messages and outbox.depth == 0

        publisher = Publisher(GW, outbox)
        from gridsense_edge.events import IncidentEvent
        from gridsense_protocol import AlarmState, Severity

        event = IncidentEvent(point=f"{GW}.t01", type="over_temperature",
                              severity=Severity.MAJOR, state=AlarmState.ACTIVE,
                              ts=datetime.now(UTC), value=75.0, threshold=60.0, unit="°C",
                              message="bench")
        incidents = 300
        t0 = time.perf_counter()
        for _ in range(incidents):
            publisher.incident(event, {})
        incident_s = time.perf_counter() - t0
        outbox.close()
        report(
            "outbox-cost", messages=messages, readings_per_message=per_message,
            payload_bytes=size,
            insert_us_per_msg=round(insert_s / messages * 1e6 - encode_us, 1),
            encode_us_per_msg=round(encode_us, 1),
            claim_ack_delete_us_per_msg=round(drain_s / messages * 1e6, 1),
            incident_commit_ms=round(incident_s / incidents * 1e3, 2),
        )


class _NullOutbox:
    """Stands in for the outbox to time the publisher's encoding alone (bench only)."""

    last_seq = 0

    def submit(self, make):  # type: ignore[no-untyped-def]
        return make(0)


class SeqChecker:
    """A subscriber that records the seq of every telemetry message, in arrival order."""

    def __init__(self, port: int) -> None:
        self.seqs: list[int] = []
        self.first_at: float | None = None
        self.last_at = 0.0
        self.ready = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-checker",
                                  protocol=MQTTProtocolVersion.MQTTv5)
        self.client.on_connect = lambda c, *_: c.subscribe(f"gridsense/v1/{GW}/telemetry", 1)
        self.client.on_subscribe = lambda *_: self.ready.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.ready.wait(10)

    def _on_message(self, _c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        payload = msg.payload
        at = payload.find(b'"seq":') + 6
        self.seqs.append(int(payload[at:payload.find(b",", at)]))
        now = time.perf_counter()
        if self.first_at is None:
            self.first_at = now
        self.last_at = now

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def depth(db: Path) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
        return int(conn.execute("SELECT count(*) FROM bulk_lane").fetchone()[0])


def bench_replay(messages: int, per_message: int, max_inflight: int) -> None:
    with tempfile.TemporaryDirectory(prefix="gridsense-bench-") as tmp:
        work = Path(tmp)
        state = work / "state"
        fill_s, size = fill(state, messages, per_message)
        broker = Mosquitto(work / "mqtt", free_port(), extra_config=BROKER_LIMITS).start()
        checker = SeqChecker(broker.port)
        (work / "gateway.yaml").write_text(json.dumps({
            "gateway": {"id": GW, "state_dir": str(state)},
            "mqtt": {"host": "127.0.0.1", "port": broker.port, "max_inflight": max_inflight},
            "health": {"interval_s": 3600},
        }))
        edge = spawn(
            [str(BIN / "gridsense-edge"), "run", "--config", str(work / "gateway.yaml")],
            work / "edge.log",
        )
        proc = psutil.Process(edge.pid)
        rss: list[int] = []
        try:
            t0 = time.perf_counter()
            drained_at = None
            deadline = t0 + 600
            while time.perf_counter() < deadline:
                rss.append(proc.memory_info().rss)
                if drained_at is None and checker.seqs and depth(state / "outbox.db") == 0:
                    drained_at = time.perf_counter()
                if drained_at is not None and len(set(checker.seqs)) >= messages:
                    break
                time.sleep(0.05)
            unique = set(checker.seqs)
            missing = messages - len(unique & set(range(messages)))
            firsts, seen = [], set()
            for seq in checker.seqs:
                if seq not in seen:
                    seen.add(seq)
                    firsts.append(seq)
            start = checker.first_at or t0
            report(
                "outbox-replay", messages=messages, readings_per_message=per_message,
                payload_bytes=size, fill_s=round(fill_s, 2), max_inflight=max_inflight,
                broker_receive_maximum=100,
                drained_msgs_per_s=round(messages / ((drained_at or t0) - start)),
                delivered_msgs_per_s=round(messages / (checker.last_at - start)),
                missing=missing, duplicates=len(checker.seqs) - len(unique),
                in_order=firsts == sorted(firsts),
                edge_rss_mb_max=round(max(rss) / 2**20, 1),
                edge_rss_mb_median=round(sorted(rss)[len(rss) // 2] / 2**20, 1),
            )
        finally:
            stop_process(edge, timeout=30)
            checker.stop()
            broker.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description="Edge outbox benchmarks (issue 3).")
    parser.add_argument("which", nargs="*", default=["cost", "replay"],
                        choices=["cost", "replay"])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--readings", type=int, default=10, help="readings per message")
    parser.add_argument("--max-inflight", type=int, default=200)
    args = parser.parse_args()
    for which in args.which:
        if which == "cost":
            bench_cost(args.messages, args.readings)
        else:
            bench_replay(args.messages, args.readings, args.max_inflight)
    return 0


if __name__ == "__main__":
    sys.exit(main())
