"""The durable outbox on a real SQLite file: numbering, lanes, caps, crash safety.

No event loop here: commits happen on incidents, on batch size, or on ``flush()``.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from edge_support import AGENT_BIN

from gridsense_devtools.ports import free_port
from gridsense_edge.transport.outbox import OutboundMessage, OutboxLimits, SqliteOutbox
from gridsense_edge.transport.outbox_db import FILE_NAME, StateDirBusy
from gridsense_edge.transport.publisher import mark_backfill
from gridsense_protocol import Reading, Telemetry, decode, encode

GW = "gw-ob"
KIB = 1024


def message(kind: str = "telemetry", size: int = 100) -> Callable[[int], OutboundMessage]:
    """A factory as the publisher passes it: the message is built for the number it gets."""

    def make(seq: int) -> OutboundMessage:
        return OutboundMessage(
            topic=f"gridsense/v1/{GW}/{kind}", payload=b"p" * size, kind=kind,
            event_id=f"E{seq:08d}", seq=seq,
        )

    return make


def stored_seqs(state_dir: Path) -> list[int]:
    with sqlite3.connect(state_dir / FILE_NAME) as conn:
        return sorted(s for (s,) in conn.execute(
            "SELECT seq FROM incident_lane UNION ALL SELECT seq FROM bulk_lane"))


def drain(outbox: SqliteOutbox, limit: int = 10_000) -> list[OutboundMessage]:
    out = []
    while batch := outbox.claim(100):
        out.extend(batch)
        for m in batch:
            outbox.ack(m)
        if len(out) >= limit:
            break
    outbox.flush()
    return out


def test_numbers_continue_across_reopen_and_incidents_go_first(tmp_path: Path) -> None:
    outbox = SqliteOutbox(tmp_path)
    kinds = ["telemetry", "health", "incident", "telemetry", "incident", "telemetry"]
    sent = [outbox.submit(message(k)) for k in kinds]
    assert [m.seq for m in sent] == list(range(6))
    outbox.close()

    reopened = SqliteOutbox(tmp_path)
    assert reopened.next_seq == 6 and reopened.depth == 6
    claimed = reopened.claim(100)
    assert [(m.seq, m.kind) for m in claimed] == [
        (2, "incident"), (4, "incident"), (0, "telemetry"), (1, "health"), (3, "telemetry"),
        (5, "telemetry"),
    ]
    assert reopened.claim(100) == []  # handed out once
    assert reopened.submit(message()).seq == 6


def test_an_incident_is_on_disk_when_submit_returns_with_everything_before_it(
    tmp_path: Path,
) -> None:
    outbox = SqliteOutbox(tmp_path)
    outbox.submit(message())
    outbox.submit(message())
    assert stored_seqs(tmp_path) == []  # bulk rows wait for their batch...
    outbox.submit(message("incident"))
    assert stored_seqs(tmp_path) == [0, 1, 2]  # ...an incident commits them with itself


def test_acked_rows_are_deleted_and_status_carries_the_last_number(tmp_path: Path) -> None:
    outbox = SqliteOutbox(tmp_path)
    assert outbox.last_seq == 0  # nothing assigned yet: status messages say 0
    for _ in range(10):
        outbox.submit(message())
    outbox.flush()
    assert outbox.last_seq == 9
    first = outbox.claim(4)
    for m in first:
        outbox.ack(m)
    assert outbox.depth == 6
    outbox.close()
    assert stored_seqs(tmp_path) == list(range(4, 10))
    assert [m.seq for m in SqliteOutbox(tmp_path).claim(100)] == list(range(4, 10))


def test_released_messages_are_handed_out_again_before_newer_ones(tmp_path: Path) -> None:
    outbox = SqliteOutbox(tmp_path)
    for _ in range(6):
        outbox.submit(message())
    outbox.flush()
    first = outbox.claim(3)
    outbox.release(first[2])
    outbox.release(first[1])
    assert [m.seq for m in outbox.claim(3)] == [1, 2, 3]


def test_a_building_failure_does_not_use_a_number(tmp_path: Path) -> None:
    outbox = SqliteOutbox(tmp_path)

    def broken(seq: int) -> OutboundMessage:
        raise ValueError("bad reading")

    outbox.submit(message())
    with pytest.raises(ValueError):
        outbox.submit(broken)
    assert outbox.submit(message()).seq == 1


def test_the_bulk_lane_drops_its_oldest_at_the_size_cap_never_incidents(tmp_path: Path) -> None:
    limits = OutboxLimits(bulk_max_bytes=100 * KIB, incident_max_bytes=1024 * KIB,
                          min_free_disk_bytes=0)
    outbox = SqliteOutbox(tmp_path, limits)
    incidents = [outbox.submit(message("incident", 1000)).seq for _ in range(3)]
    for _ in range(300):  # ~350 KiB of telemetry into a 100 KiB lane
        outbox.submit(message("telemetry", 1000))
    outbox.flush()
    stats = outbox.stats()
    assert stats["bulk_bytes"] <= 100 * KIB
    assert stats["incident_depth"] == 3
    assert stats["dropped_cap"] == stats["dropped_telemetry"] == stats["dropped"] > 150
    kept = [m.seq for m in drain(outbox)]
    assert kept[:3] == incidents
    telemetry = kept[3:]
    # What is left is the newest, contiguous up to the last number.
    assert telemetry == list(range(telemetry[0], outbox.next_seq))


def test_the_bulk_lane_drops_what_is_older_than_the_age_cap(tmp_path: Path) -> None:
    now = [1_000_000.0]
    limits = OutboxLimits(bulk_max_age_s=3600, min_free_disk_bytes=0)
    outbox = SqliteOutbox(tmp_path, limits, clock=lambda: now[0])
    for _ in range(5):
        outbox.submit(message())
    outbox.submit(message("incident"))
    now[0] += 1800
    for _ in range(3):
        outbox.submit(message())
    now[0] += 2000  # the first five are now 3800 s old, the last three 2000 s
    outbox.maintain()
    stats = outbox.stats()
    assert stats["dropped_age"] == 5 and stats["bulk_depth"] == 3
    assert stats["oldest_age_s"] == 3800  # the incident, which age does not evict
    assert [m.seq for m in drain(outbox)] == [5, 6, 7, 8]


def test_below_the_free_disk_floor_the_bulk_lane_sheds_and_incidents_stay(
    tmp_path: Path,
) -> None:
    # A floor above any real disk's free space: the outbox is always "below" it.
    limits = OutboxLimits(min_free_disk_bytes=2**62)
    outbox = SqliteOutbox(tmp_path, limits)
    for _ in range(50):
        outbox.submit(message("telemetry", 40 * KIB))
    outbox.submit(message("incident"))
    outbox.maintain()
    stats = outbox.stats()
    assert stats["dropped_disk"] == 50 and stats["bulk_depth"] == 0
    assert stats["incident_depth"] == 1 and stats["dropped_incident"] == 0
    # The space went back to the disk, not just to SQLite's free list.
    assert stats["bytes_on_disk"] < 1024 * KIB


def test_a_nearly_full_incident_lane_says_so_and_drops_only_past_its_cap(
    tmp_path: Path,
) -> None:
    limits = OutboxLimits(incident_max_bytes=20 * KIB, min_free_disk_bytes=0)
    outbox = SqliteOutbox(tmp_path, limits)
    for _ in range(17):  # ~1.1 KiB each: 18.7 KiB of 20
        outbox.submit(message("incident", 1000))
    stats = outbox.stats()
    assert stats["incident_lane_full"] == 1 and stats["dropped"] == 0
    for _ in range(5):
        outbox.submit(message("incident", 1000))
    stats = outbox.stats()
    assert stats["dropped_incident_cap"] == stats["dropped_incident"] == 4
    assert stats["incident_bytes"] <= 20 * KIB


def test_rows_on_the_wire_are_not_shed(tmp_path: Path) -> None:
    limits = OutboxLimits(bulk_max_bytes=20 * KIB, min_free_disk_bytes=0)
    outbox = SqliteOutbox(tmp_path, limits)
    for _ in range(10):
        outbox.submit(message("telemetry", 1000))
    outbox.flush()
    in_flight = outbox.claim(5)
    for _ in range(30):
        outbox.submit(message("telemetry", 1000))
    outbox.flush()
    for m in in_flight:
        outbox.ack(m)
    outbox.flush()
    assert outbox.stats()["acked"] == 5
    assert stored_seqs(tmp_path)[0] > 9  # the unsent old ones went, not the in-flight ones


def test_the_old_counter_file_is_migrated(tmp_path: Path) -> None:
    (tmp_path / "seq").write_text("4000\n")
    outbox = SqliteOutbox(tmp_path)
    assert outbox.submit(message()).seq == 4000
    assert not (tmp_path / "seq").exists() and (tmp_path / "seq.migrated").exists()


def test_a_damaged_file_is_moved_aside_and_numbers_jump_forward(tmp_path: Path) -> None:
    outbox = SqliteOutbox(tmp_path)
    last = max(outbox.submit(message()).seq for _ in range(20))
    outbox.close()
    (tmp_path / FILE_NAME).write_bytes(b"this is not a database" * 100)
    reopened = SqliteOutbox(tmp_path)
    assert reopened.submit(message()).seq > last
    assert list(tmp_path.glob(f"{FILE_NAME}.damaged-*"))


def test_backfill_is_marked_on_the_encoded_message() -> None:
    reading = Reading(point=f"{GW}.t1", metric="temperature", value=21.5, unit="°C",
                      ts=datetime(2026, 1, 1, tzinfo=UTC))
    telemetry = Telemetry(gateway=GW, seq=7, ts=reading.ts, readings=[reading])
    payload = encode(telemetry)
    marked = mark_backfill(payload)
    decoded = decode(f"gridsense/v1/{GW}/telemetry", marked)
    assert decoded.backfill is True
    assert decoded.model_copy(update={"backfill": False}) == telemetry
    # A layout it does not recognise still gets the flag, through JSON.
    odd = json.dumps({"backfill": False, **json.loads(payload)}, indent=1).encode()
    assert json.loads(mark_backfill(odd))["backfill"] is True


CRASHING_WRITER = """
import asyncio, os, sys
from gridsense_edge.transport.outbox import OutboundMessage, SqliteOutbox

def make(kind):
    return lambda seq: OutboundMessage(topic="gridsense/v1/gw/" + kind, payload=b"x" * 200,
                                       kind=kind, event_id="E%d" % seq, seq=seq)

async def main():
    outbox = SqliteOutbox(sys.argv[1])
    n = 0
    while True:
        n += 1
        message = outbox.submit(make("incident" if n % 25 == 0 else "telemetry"))
        if message.kind == "incident":
            print("durable", message.seq, flush=True)
        if n % 3 == 0:
            for m in outbox.claim(2):
                print("acking", m.seq, flush=True)  # before ack: a superset of what went
                outbox.ack(m)
        await asyncio.sleep(0.0005 if n % 7 else 0.01)

asyncio.run(main())
"""


@pytest.mark.parametrize("lines", [300, 3000])
def test_kill_9_leaves_no_gap_and_loses_nothing_durable(tmp_path: Path, lines: int) -> None:
    proc = subprocess.Popen([sys.executable, "-c", CRASHING_WRITER, str(tmp_path)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    seen: list[tuple[str, int]] = []
    for line in proc.stdout:
        what, seq = line.split()
        seen.append((what, int(seq)))
        if len(seen) >= lines:
            proc.kill()  # SIGKILL, mid-stream
            break
    proc.wait(30)
    durable = {seq for what, seq in seen if what == "durable"}
    acked = {seq for what, seq in seen if what == "acking"}
    assert durable

    outbox = SqliteOutbox(tmp_path)
    stored = set(stored_seqs(tmp_path))
    assert max(durable) < outbox.next_seq
    # Every number below next_seq is either still stored or was delivered: no gap.
    missing = set(range(outbox.next_seq)) - stored - acked
    assert not missing, sorted(missing)[:20]
    assert durable <= stored | acked
    # And the next run continues exactly there.
    assert outbox.submit(message()).seq == outbox.next_seq - 1


def test_one_agent_per_state_folder(tmp_path: Path) -> None:
    state = tmp_path / "state"
    holder = SqliteOutbox(state)
    with pytest.raises(StateDirBusy):
        SqliteOutbox(state)
    config = tmp_path / "gateway.yaml"
    config.write_text(f"gateway: {{id: {GW}, state_dir: {state}}}\nmqtt: {{port: {free_port()}}}\n")
    done = subprocess.run([str(AGENT_BIN), "run", "--config", str(config)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 3 and "another gridsense-edge" in done.stderr
    holder.close()
    SqliteOutbox(state).close()  # free again once the holder is gone
