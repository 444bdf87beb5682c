"""Fuzz the server's ingest path end to end: hostile payloads (``fuzz_payloads``) published on
gateway topics of a real Mosquitto, taken by a real ``gridsense-server`` process into a real
database and InfluxDB, with known-good canaries in between. Used by ``scripts/fuzz_ingest.py``
and ``tests/server/test_fuzz_ingest.py``; ``fuzz_report`` checks and prints the outcome.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import create_engine, text
from ulid import ULID

from gridsense_devtools.community import registry_yaml
from gridsense_devtools.fuzz_messages import Layout
from gridsense_devtools.fuzz_payloads import FuzzPayload, generate
from gridsense_devtools.ports import free_port
from gridsense_devtools.server_config import write_server_config
from gridsense_devtools.server_process import ServerProcess
from gridsense_devtools.services import InfluxDB, Mosquitto
from gridsense_protocol import (
    Incident,
    Kind,
    ProtocolError,
    Reading,
    Severity,
    Telemetry,
    decode,
    encode,
    topic_for,
    utc_now,
)
from gridsense_server.ingest.classify import invalid_reason

CANARY_GATEWAY = "gw-canary"
CANARY_POINT = "gw-canary.t"
CANARY_METRIC = "fuzz_canary"
LAYOUT = Layout(
    gateways={"gw-01": ("gw-01.p0", "gw-01.p1", "gw-01.p2", "boiler-a"),
              "gw-02": ("gw-02.p0", "gw-02.p1")},
    unregistered=("gw-x8", "gw-x9"))
# Readings older than this are refused before InfluxDB (the retention the server is told of).
MAX_AGE_S = 10 * 365 * 86400


@dataclass
class FuzzRun:
    """What was sent, what the protocol alone says of it, and what the server counted."""

    seed: int
    sent: int = 0  # fuzz payloads acknowledged by the broker
    canaries: int = 0
    seconds: float = 0.0
    labels: Counter[str] = field(default_factory=Counter)  # family.what of each payload sent
    # The protocol's verdict, decoded here the way the server's bridge decodes: refusals by
    # class and (bad_field) by field; decoded messages by kind.
    expected_invalid: Counter[str] = field(default_factory=Counter)
    bad_fields: Counter[str] = field(default_factory=Counter)
    decoded: Counter[str] = field(default_factory=Counter)
    escaped: Counter[str] = field(default_factory=Counter)  # decode raised something else
    counters: dict[str, int] = field(default_factory=dict)  # the server's, since the baseline
    health: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    server_alive: bool = True


def field_key(path: str) -> str:
    """``readings[12].value`` -> ``readings[].value``; free-form dict keys -> ``{key}``."""
    parts: list[str] = []
    for part in path.replace("[", ".[").split("."):
        if part.startswith("["):
            parts.append("[]")
        elif parts and parts[-1] in ("drivers", "counters", "devices", "details", "result"):
            parts.append("{key}")
        elif part:
            parts.append(part)
    return ".".join(parts).replace(".[]", "[]") or "(payload)"


def classify(run: FuzzRun, payload: FuzzPayload) -> None:
    try:
        message = decode(payload.topic, payload.payload)
    except ProtocolError as exc:
        reason = invalid_reason(exc, len(payload.payload))
        run.expected_invalid[reason] += 1
        if reason == "bad_field":
            run.bad_fields[field_key(exc.field)] += 1
    except Exception as exc:  # the property tests say this never happens; count it if it does
        run.escaped[type(exc).__name__] += 1
    else:
        run.decoded[message.kind.value] += 1


class Canaries:
    """Known-good messages between the fuzz: a reading and an incident from a gateway no fuzz
    payload speaks for, each checked in the store it must reach."""

    def __init__(self, influx: InfluxDB, database: str, db_url: str) -> None:
        self.influx = influx
        self.database = database
        self.engine = create_engine(db_url)
        self.seq = 0
        self.made = 0  # never reset: a value is never reused, even after the warm-up
        self.readings: list[float] = []
        self.incidents: list[str] = []

    def make(self) -> list[tuple[str, bytes]]:
        self.made += 1
        index = float(self.made)
        now = utc_now()
        self.seq += 1
        reading = Telemetry(gateway=CANARY_GATEWAY, seq=self.seq, ts=now, readings=[Reading(
            point=CANARY_POINT, metric=CANARY_METRIC, value=index, unit="",
            ts=now + timedelta(microseconds=self.made))])
        self.seq += 1
        incident = Incident(gateway=CANARY_GATEWAY, seq=self.seq, ts=now, point=CANARY_POINT,
                            type=CANARY_METRIC, severity=Severity.MINOR, id=str(ULID()))
        self.readings.append(index)
        self.incidents.append(incident.id)
        return [(topic_for(CANARY_GATEWAY, Kind.TELEMETRY), encode(reading)),
                (topic_for(CANARY_GATEWAY, Kind.INCIDENT), encode(incident))]

    def applied(self, upto: int) -> bool:
        """The first ``upto`` canaries of each kind are in InfluxDB and the database."""
        if upto <= 0:
            return True
        rows = self.influx.points(
            f"SELECT value FROM {CANARY_METRIC} WHERE point='{CANARY_POINT}'", self.database)
        if not set(self.readings[:upto]) <= {row["value"] for row in rows}:
            return False
        wanted = self.incidents[:upto]
        with self.engine.connect() as connection:
            found = connection.execute(text(
                "SELECT count(*) FROM incident_events WHERE event_id IN "
                f"({','.join(repr(i) for i in wanted)})")).scalar_one()
        return found == len(wanted)

    def close(self) -> None:
        self.engine.dispose()


class Publisher:
    """One paho client publishing at QoS 1; a chunk is sent once the broker has all of it."""

    def __init__(self, port: int) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="fuzz-publisher",
                                  protocol=mqtt.MQTTv311)
        self.client.max_inflight_messages_set(200)
        self.client.max_queued_messages_set(0)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def publish_all(self, messages: list[tuple[str, bytes]]) -> int:
        infos = [self.client.publish(topic, payload, qos=1) for topic, payload in messages]
        for info in infos:
            info.wait_for_publish(120)
        return sum(info.is_published() for info in infos)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@contextmanager
def fuzz_stack(work: Path, influx: tuple[InfluxDB, str] | None = None,
               db_url: str | None = None) -> Iterator[tuple[ServerProcess, Mosquitto,
                                                             InfluxDB, str, str]]:
    """Mosquitto (queues unbounded: the fuzz is paced by its canaries), InfluxDB (given, or
    started here), and the server as a process with the fuzz layout in its registry."""
    work.mkdir(parents=True, exist_ok=True)
    broker = Mosquitto(work / "mosquitto", free_port(),
                       extra_config=["max_queued_messages 0"]).start()
    own_influx = None
    if influx is None:
        own_influx = InfluxDB(work / "influxdb", free_port()).start()
        influx = (own_influx, "gridsense_fuzz")
    server_influx, database = influx
    points = {p: (gw, "g01" if gw == "gw-01" else "g02")
              for gw, ps in LAYOUT.gateways.items() for p in ps}
    points[CANARY_POINT] = (CANARY_GATEWAY, "g01-a")
    (work / "registry.yaml").write_text(registry_yaml(points), encoding="utf-8")
    (work / "state").mkdir(exist_ok=True)
    db_url = db_url or f"sqlite:///{work / 'state' / 'server.db'}"
    http_port = free_port()
    config = write_server_config(work, mqtt_port=broker.port, influx_url=server_influx.url,
                                 database=database, db_url=db_url, http_port=http_port,
                                 registry=str(work / "registry.yaml"),
                                 client_id=f"fuzz-server-{http_port}",
                                 ingest={"max_age_s": MAX_AGE_S})
    server = ServerProcess(config, http_port, work / "server.log")
    try:
        server.start()
        yield server, broker, server_influx, database, db_url
    finally:
        server.stop()
        broker.stop()
        if own_influx is not None:
            own_influx.stop()


OUTCOMES = ("ingest.outcome.applied", "ingest.outcome.dead_lettered")


def _settled(counters: dict[str, Any]) -> int:
    return sum(int(counters.get(name, 0)) for name in OUTCOMES)


def _numbers(health: dict[str, Any] | None) -> dict[str, int]:
    return {k: v for k, v in (health or {}).items()
            if isinstance(v, int) and not isinstance(v, bool)}


def run_fuzz(server: ServerProcess, broker: Mosquitto, influx: InfluxDB, database: str,
             db_url: str, *, count: int, seed: int, chunk: int = 500, stall_s: float = 120.0,
             workers: int = 1, progress: Callable[[str], None] = lambda _line: None) -> FuzzRun:
    """Publish ``count`` payloads in chunks, each with a reading and an incident canary at a
    seeded place in it; before the next chunk, the previous chunk's canaries must be applied.
    Then wait until every message is settled. Problems are listed, never raised."""
    run = FuzzRun(seed)
    canaries = Canaries(influx, database, db_url)
    publisher = Publisher(broker.port)
    baseline = _warm_up(server, canaries, publisher, run, stall_s)
    started = time.monotonic()
    place = random.Random(seed)
    batch: list[FuzzPayload] = []
    try:
        for payload in generate(seed, count, LAYOUT, utc_now(), workers=workers):
            batch.append(payload)
            if len(batch) == chunk:
                if not _send_chunk(run, batch, server, canaries, publisher, place, stall_s):
                    break
                progress(f"已发送 sent {run.sent}/{count}")
                batch = []
        else:
            if batch:
                _send_chunk(run, batch, server, canaries, publisher, place, stall_s)
        _wait_settled(run, server, baseline, stall_s)
        if not _wait(lambda: canaries.applied(len(canaries.incidents)), stall_s):
            run.problems.append("canaries lost: not every canary reached InfluxDB and the "
                                "database")
    finally:
        run.seconds = time.monotonic() - started
        publisher.close()
        canaries.close()
    run.server_alive = server.alive()
    if not run.server_alive:
        run.problems.append(f"the server process exited: {server.log()[-2000:]}")
    health = server.health() or {}
    run.health = {"status": health.get("status"), "reasons": health.get("reasons", [])}
    run.counters = {k: v - baseline.get(k, 0) for k, v in _numbers(health).items()}
    return run


def _warm_up(server: ServerProcess, canaries: Canaries, publisher: Publisher, run: FuzzRun,
             stall_s: float) -> dict[str, int]:
    """Canaries until one is applied (the server's subscriptions are in place), then the
    counters as they stand: everything after is the fuzz's."""
    deadline = time.monotonic() + stall_s
    while not canaries.applied(len(canaries.incidents)) or not canaries.incidents:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the server never applied a canary; log:\n{server.log()}")
        publisher.publish_all(canaries.make())
        _wait(lambda: canaries.applied(len(canaries.incidents)), 3.0)
    _wait(lambda: (server.health() or {}).get("ingest.unacked") == 0, stall_s)
    baseline = _numbers(server.health())
    run.canaries = 0
    canaries.readings.clear()  # the warm-up's may have been published before the subscription
    canaries.incidents.clear()
    return baseline


def _send_chunk(run: FuzzRun, batch: list[FuzzPayload], server: ServerProcess,
                canaries: Canaries, publisher: Publisher, place: random.Random,
                stall_s: float) -> bool:
    messages = [(p.topic, p.payload) for p in batch]
    at = place.randrange(len(messages) + 1)
    messages[at:at] = canaries.make()
    run.canaries += 1
    published = publisher.publish_all(messages)
    if published != len(messages):
        run.problems.append(f"the broker took {published} of {len(messages)} publications")
    for payload in batch:
        run.labels[payload.label] += 1
        classify(run, payload)
    run.sent += len(batch)
    # Paced by the canaries: the previous chunk's must be in before the next goes out.
    if not _wait(lambda: canaries.applied(run.canaries - 1), stall_s):
        run.problems.append(f"ingest stalled: canary {run.canaries - 1} not applied within "
                            f"{stall_s:g} s")
        return False
    health = server.health()
    if health is None or health.get("status") == "down":
        run.problems.append(f"/healthz down after {run.sent} payloads: "
                            f"{(health or {}).get('reasons', 'no answer')}")
        return False
    return True


def _wait_settled(run: FuzzRun, server: ServerProcess, baseline: dict[str, int],
                  stall_s: float) -> None:
    """Until every message sent was applied or dead-lettered and acknowledged; a stall is
    no progress for ``stall_s``."""
    expected = run.sent + 2 * run.canaries
    last, since = -1, time.monotonic()
    while True:
        counters = _numbers(server.health())
        settled = _settled(counters) - _settled(baseline)
        if settled >= expected and counters.get("ingest.unacked") == 0:
            return
        if settled != last:
            last, since = settled, time.monotonic()
        elif time.monotonic() - since > stall_s or not server.alive():
            run.problems.append(f"ingest stalled: {settled} of {expected} messages settled, "
                                f"no progress for {stall_s:g} s")
            return
        time.sleep(0.2)


def _wait(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True
