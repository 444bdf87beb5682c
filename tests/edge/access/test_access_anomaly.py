"""The access-pattern model: trained by models/access_anomaly on simulated traffic or on a
site's own history (CSV export), scored by real onnxruntime, raised by the driver."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from osdp_support import SITE_KEY, osdp_rig, resident, run_bus, stop_bus
from pass_support import compact, make_pass, pass_keys, record

from gridsense_edge.clock import ClockTrust
from gridsense_edge.drivers.osdp.anomaly import AnomalyModel
from gridsense_edge.drivers.osdp.passbook import PassRecord, PassUpdate, parse_keys

TRAIN = Path(__file__).resolve().parents[3] / "models" / "access_anomaly" / "train.py"
OFFSET_H = 8.0


def train(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(TRAIN), *args, "--json"], capture_output=True,
                          text=True, timeout=120)


def test_simulated_model_separates_routine_from_odd_hours(tmp_path: Path) -> None:
    out = tmp_path / "sim.onnx"
    done = train("simulate", "--days", "14", "--residents", "60", "--out", str(out))
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["credentials"] == 60 and summary["threshold"] > 0
    model = AnomalyModel(out)
    day = datetime(2026, 11, 2, tzinfo=UTC) - timedelta(hours=OFFSET_H)  # local midnight
    # res-0000..: find one commuter by its own profile: lowest score at 07h local
    scores = {h: model.score("res-0001", "b2-main", day + timedelta(hours=h)).value
              for h in range(24)}
    usual, odd = min(scores, key=scores.__getitem__), max(scores, key=scores.__getitem__)
    assert scores[odd] > model.threshold > scores[usual]
    unknown = model.score("nobody", "b2-main", day + timedelta(hours=usual))
    assert not unknown.known_credential and unknown.value > 0


def _history(path: Path, hour_utc: int, swipes: int = 80) -> Path:
    start = datetime(2026, 10, 1, hour_utc, 10, tzinfo=UTC)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["event_id", "ts", "gateway", "point", "grid", "door", "result",
                         "method", "credential", "card", "reason", "offline", "backfill"])
        for day in range(swipes):
            ts = (start + timedelta(days=day, minutes=day % 30)).isoformat()
            writer.writerow([f"E{day}", ts, "gw", "gw.door1", "g01", "b3-east", "granted",
                             "card", "alice", "00aa", "", "false", "false"])
    return path


def test_retrain_refuses_a_bad_history_naming_file_line_and_column(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("ts,credential,door\n2026-10-01T08:00:00+00:00,a,d\nyesterday,a,d\n")
    done = train("retrain", "--csv", str(bad), "--out", str(tmp_path / "m.onnx"))
    assert done.returncode == 2 and f"{bad}:3: ts" in done.stderr
    short = _history(tmp_path / "short.csv", 3, swipes=10)
    done = train("retrain", "--csv", str(short), "--out", str(tmp_path / "m.onnx"))
    assert done.returncode == 2 and "need at least" in done.stderr


async def test_an_unusual_swipe_becomes_access_anomaly_with_score_and_threshold(
    tmp_path: Path,
) -> None:
    # alice has only ever come in twelve hours away from now: a swipe now is unusual
    odd_hour = (datetime.now(UTC).hour + 12) % 24
    model = tmp_path / "site.onnx"
    done = train("retrain", "--csv", str(_history(tmp_path / "h.csv", odd_hour)),
                 "--out", str(model))
    assert done.returncode == 0, done.stderr
    with osdp_rig(tmp_path, addresses=(1,), anomaly_model=model) as h:
        h.store.apply_snapshot(1, SITE_KEY, [resident("alice", card="100200")])
        task = await run_bus(h)
        try:
            h.sim.present_card(1, 100200)
            incident = await h.until(lambda: next(
                (i for i in h.incidents if i.type == "access_anomaly"), None))
            assert "granted" in h.results("gw.door1")  # the door still opened
            assert incident.threshold is not None and incident.value > incident.threshold
            assert incident.details["credential"] == "alice"
            assert incident.details["score"] == incident.value
            assert incident.details["threshold"] == incident.threshold
            assert h.bus.health().counters["anomalies"] == 1
        finally:
            await stop_bus(task)


async def test_a_pass_is_scored_as_its_holder(tmp_path: Path) -> None:
    """The model knows credentials, not passes: a pass use counts as its holder's."""
    odd_hour = (datetime.now(UTC).hour + 12) % 24
    model = tmp_path / "site.onnx"
    done = train("retrain", "--csv", str(_history(tmp_path / "h.csv", odd_hour)),
                 "--out", str(model))
    assert done.returncode == 0, done.stderr
    now = int(time.time())
    item = make_pass(uses=0, holder="alice", not_before=now - 60, not_after=now + 600)
    with osdp_rig(tmp_path, addresses=(1,), anomaly_model=model,
                  clock=ClockTrust("rtc")) as h:
        h.store.apply_snapshot(1, SITE_KEY, [resident("alice", card="100200")], PassUpdate(
            parse_keys(pass_keys()), [PassRecord.from_wire(record(item))]))
        task = await run_bus(h)
        try:
            h.sim.present_scan(1, compact(item))
            incident = await h.until(lambda: next(
                (i for i in h.incidents if i.type == "access_anomaly"), None))
            assert incident.details["credential"] == "alice"
            assert incident.details["pass_id"] == item.pass_id
        finally:
            await stop_bus(task)
