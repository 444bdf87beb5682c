"""Access events are audit records: in the outbox they ride the incident lane, so a bulk-lane
cap that sheds telemetry never takes a door decision with it (real SQLite outbox)."""

from __future__ import annotations

from pathlib import Path

from gridsense_edge.transport.outbox import OutboundMessage, OutboxLimits, SqliteOutbox

GW = "gw-lane"
KIB = 1024


def submit(outbox: SqliteOutbox, kind: str, size: int = 1000) -> int:
    def make(seq: int) -> OutboundMessage:
        return OutboundMessage(topic=f"gridsense/v1/{GW}/{kind}", payload=b"p" * size,
                               kind=kind, event_id=f"E{seq:08d}", seq=seq)

    return outbox.submit(make).seq


def test_access_events_survive_a_bulk_cap_eviction(tmp_path: Path) -> None:
    limits = OutboxLimits(bulk_max_bytes=100 * KIB, incident_max_bytes=1024 * KIB,
                          min_free_disk_bytes=0)
    outbox = SqliteOutbox(tmp_path, limits)
    access: list[int] = []
    for i in range(300):  # ~350 KiB of telemetry into a 100 KiB lane, swipes in between
        if i % 30 == 0:
            access.append(submit(outbox, "access", 400))
        submit(outbox, "telemetry")
    outbox.flush()
    stats = outbox.stats()
    assert stats["dropped_telemetry"] > 150 and stats["dropped_cap"] == stats["dropped"]
    assert stats["incident_depth"] == len(access) == 10
    kept: list[OutboundMessage] = []
    while batch := outbox.claim(100):
        kept.extend(batch)
        for m in batch:
            outbox.ack(m)
    assert [m.seq for m in kept if m.kind == "access"] == access
    assert [m.kind for m in kept[:len(access)]] == ["access"] * len(access)  # sent first
    outbox.close()
