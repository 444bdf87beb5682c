"""The disk spool on its own: order across segments and restarts, the size cap, torn tails."""

from __future__ import annotations

import os
from pathlib import Path

from gridsense_server.timeseries.spool import DiskSpool


def body(n: int) -> bytes:
    return f"temperature,point=p{n} value={n} {n}\n".encode()


def drain(spool: DiskSpool) -> list[bytes]:
    out = []
    while (record := spool.peek()) is not None:
        out.append(record.body)
        assert spool.pop(record.key)
    return out


def test_records_come_back_in_order_across_segments_and_restarts(tmp_path: Path) -> None:
    spool = DiskSpool(tmp_path, max_bytes=10_000_000, segment_bytes=200)
    for n in range(50):
        spool.push(body(n), 1)
    spool.sync()
    assert spool.records == 50 and spool.lines == 50
    assert len(list(tmp_path.glob("*.seg"))) > 3  # small segments: several files
    for n in range(20):
        record = spool.peek()
        assert record is not None and record.body == body(n)
        assert spool.pop(record.key)
        assert not spool.pop(record.key)  # already gone: popping twice changes nothing
    spool.close()

    reopened = DiskSpool(tmp_path, max_bytes=10_000_000, segment_bytes=200)
    assert reopened.records == 30 and reopened.lines == 30
    reopened.push(body(50), 1)
    assert drain(reopened) == [body(n) for n in range(20, 51)]
    assert reopened.records == 0 and reopened.bytes == 0
    assert list(tmp_path.glob("*.seg")) == []  # a drained spool takes no disk
    reopened.close()


def test_when_full_the_oldest_segments_go_and_are_counted(tmp_path: Path) -> None:
    spool = DiskSpool(tmp_path, max_bytes=2000, segment_bytes=400)
    first = spool.peek()
    assert first is None
    dropped = 0
    keys = []
    for n in range(200):
        key, lost = spool.push(body(n), 1)
        keys.append(key)
        dropped += lost
        assert spool.bytes <= 2000
    spool.sync()
    assert dropped > 0 and dropped == spool.dropped_lines
    assert spool.records == 200 - dropped
    remaining = drain(spool)
    assert remaining == [body(n) for n in range(dropped, 200)]  # the newest survive, in order
    assert not spool.pop(keys[0])  # a dropped record cannot be popped
    spool.close()


def test_a_batch_larger_than_the_cap_is_refused_and_counted(tmp_path: Path) -> None:
    spool = DiskSpool(tmp_path, max_bytes=100, segment_bytes=100)
    key, lost = spool.push(os.urandom(500), 7)  # incompressible
    assert key is None and lost == 7 and spool.records == 0
    spool.close()


def test_a_torn_tail_is_cut_off_at_open_and_earlier_records_survive(tmp_path: Path) -> None:
    spool = DiskSpool(tmp_path, max_bytes=1_000_000)
    for n in range(5):
        spool.push(body(n), 1)
    spool.sync()
    spool.close()
    [segment] = tmp_path.glob("*.seg")
    size = segment.stat().st_size
    with segment.open("ab") as handle:  # a crash in the middle of an append
        handle.write(b"GSP1\xff\x00\x00\x00partial")
    reopened = DiskSpool(tmp_path, max_bytes=1_000_000)
    assert segment.stat().st_size == size
    assert drain(reopened) == [body(n) for n in range(5)]
    reopened.close()


def test_a_corrupt_record_skips_its_segment_and_is_counted(tmp_path: Path) -> None:
    spool = DiskSpool(tmp_path, max_bytes=1_000_000, segment_bytes=150)
    for n in range(12):
        spool.push(body(n), 1)
    spool.sync()
    segments = sorted(tmp_path.glob("*.seg"))
    assert len(segments) >= 3
    with segments[0].open("r+b") as handle:  # flip a byte inside the first record's data
        handle.seek(20)
        byte = handle.read(1)
        handle.seek(20)
        handle.write(bytes([byte[0] ^ 0xFF]))
    records = drain(spool)
    assert spool.corrupt_records == 1
    assert records and records[-1] == body(11)
    assert spool.dropped_lines == 12 - len(records)
    spool.close()


def test_a_second_process_cannot_open_a_spool_in_use(tmp_path: Path) -> None:
    import subprocess
    import sys

    spool = DiskSpool(tmp_path, max_bytes=1_000_000)
    probe = ("import sys; from pathlib import Path\n"
             "from gridsense_server.timeseries.spool import DiskSpool\n"
             "try:\n    DiskSpool(Path(sys.argv[1]), 1000)\nexcept RuntimeError as e:\n"
             "    print(e); sys.exit(3)\n")
    result = subprocess.run([sys.executable, "-c", probe, str(tmp_path)], capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 3 and "in use by another process" in result.stdout
    spool.close()
    result = subprocess.run([sys.executable, "-c", probe, str(tmp_path)], capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
