"""Throughput probe for server ingest (not a test: no timing is ever asserted).

    .venv/bin/python tests/server/bench_ingest.py [--messages 2000] [--readings 100]

Stage 1 (CPU only): decode (gridsense_protocol.decode) + line formatting, in-process.
Stage 2 (end to end): a publisher process → private Mosquitto → the server (paho thread,
hand-off, dispatcher, writer) → a private InfluxDB; readings/s until InfluxDB acknowledged all.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from gridsense_protocol import Kind, Reading, Telemetry, decode, encode, topic_for  # noqa: E402
from gridsense_server.app import ServerApp  # noqa: E402
from gridsense_server.config import load_server_config  # noqa: E402

from devservices import InfluxDB, Mosquitto, free_port  # noqa: E402

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def payloads(messages: int, readings: int, gateway: str = "gw-01") -> list[bytes]:
    out = []
    for m in range(messages):
        base = T0 + timedelta(seconds=m)
        out.append(encode(Telemetry(
            gateway=gateway, seq=m + 1, ts=base,
            readings=[Reading(point=f"{gateway}.p{r % 50}", metric="temperature",
                              value=20.0 + (r % 7) * 0.1, unit="°C",
                              ts=base + timedelta(microseconds=r)) for r in range(readings)],
        )))
    return out


def stage_cpu(messages: int, readings: int) -> None:
    from gridsense_server.line_protocol import LineFormatter

    topic = topic_for("gw-01", Kind.TELEMETRY)
    data = payloads(messages, readings)
    formatter = LineFormatter({f"gw-01.p{i}": "g01" for i in range(50)}.get)
    start = time.perf_counter()
    total = 0
    for payload in data:
        message = decode(topic, payload)
        lines, _ = formatter.format(message.gateway, message.readings)
        body = ("\n".join(lines)).encode()
        total += len(lines)
    elapsed = time.perf_counter() - start
    print(f"stage 1 decode+format: {total} readings in {elapsed:.2f}s = "
          f"{total / elapsed:,.0f} readings/s ({len(body)} bytes per message body)")


def _publish(port: int, data: list[bytes], gateway: str) -> None:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-{gateway}",
                         protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    topic = topic_for(gateway, Kind.TELEMETRY)
    infos = [client.publish(topic, payload, qos=1) for payload in data]
    for info in infos:
        info.wait_for_publish(120)
    client.loop_stop()
    client.disconnect()


async def _start(config: Path) -> tuple[ServerApp, asyncio.Event, asyncio.Task[None]]:
    from server_helpers import async_wait_until

    app = ServerApp(load_server_config(config))
    stop = asyncio.Event()
    task = asyncio.create_task(app.run(stop))
    await app.ready.wait()
    assert app.consumer is not None
    await async_wait_until(app.consumer.subscribed.is_set, 30, "subscribed")
    return app, stop, task


async def stage_end_to_end(messages: int, readings: int, batch_size: int,
                           preload: bool) -> None:
    from server_helpers import write_server_config

    folder = Path(tempfile.mkdtemp(prefix="gs-bench-"))
    broker = Mosquitto(folder / "mosquitto", free_port(),
                       extra_config=["max_queued_messages 1000000",
                                     "max_inflight_messages 1000"]).start()
    influx = InfluxDB(folder / "influx", free_port()).start()
    points = "\n".join(f"  - {{id: gw-01.p{i}, gateway: gw-01, grid: g01, name: p{i}}}"
                       for i in range(50))
    (folder / "registry.yaml").write_text(
        "streets:\n  - {id: s, name: s, communities: [{id: c, name: c, grids: "
        f"[{{id: g01, name: g}}]}}]}}\npoints:\n{points}\n"
    )
    config = write_server_config(folder, mqtt_port=broker.port, influx_url=influx.url,
                                 database="bench", batch_size=batch_size)
    app, stop, task = await _start(config)
    try:
        data = payloads(messages, readings)
        total = messages * readings
        publisher = multiprocessing.Process(target=_publish, args=(broker.port, data, "gw-01"))
        if preload:
            # Measure the server alone: the broker queues everything for the server's
            # persistent session while it is stopped, then the server drains the backlog.
            stop.set()
            await task
            publisher.start()
            publisher.join()
            app, stop, task = await _start(config)
            start = time.perf_counter()
        else:
            start = time.perf_counter()
            publisher.start()
        while app.counters.get("influx.written_lines") < total:
            await asyncio.sleep(0.05)
            if time.perf_counter() - start > 300:
                print("gave up after 300 s:", app.counters.snapshot())
                break
        elapsed = time.perf_counter() - start
        publisher.join()
        mode = "backlog drained" if preload else "live"
        print(f"stage 2 MQTT→InfluxDB ({mode}): {app.counters.get('influx.written_lines')} of "
              f"{total} readings in {elapsed:.2f}s = {total / elapsed:,.0f} readings/s "
              f"({messages / elapsed:,.0f} messages/s, {readings} readings each)")
    finally:
        stop.set()
        await task
        influx.stop()
        broker.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--readings", type=int, default=100, help="readings per message")
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--cpu-only", action="store_true")
    parser.add_argument("--preload", action="store_true",
                        help="publish while the server is stopped, then time the drain")
    args = parser.parse_args()
    from gridsense_server.logs import setup_logging

    setup_logging("WARNING")
    stage_cpu(args.messages, args.readings)
    if not args.cpu_only:
        asyncio.run(stage_end_to_end(args.messages, args.readings, args.batch_size,
                                     args.preload))


if __name__ == "__main__":
    main()
