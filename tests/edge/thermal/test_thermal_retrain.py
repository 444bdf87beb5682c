"""Retraining the temperature model from a site's own history in a real InfluxDB."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import onnx
from temperature_anomaly.simulator import DAY_MIN, simulate
from thermal_support import MODEL

from gridsense_devtools.services import InfluxDB
from gridsense_edge.rules.temperature_anomaly.model import TemperatureModel

MODELS = MODEL.parent.parent
UNTIL = datetime(2026, 11, 30, tzinfo=UTC)
POINTS = ["gw-h1.boiler", "gw-h1.pump"]


def write_history(influx: InfluxDB, database: str) -> None:
    """Three days of two simulated sensors, as the server writes them (one line a reading)."""
    values = simulate("boiler_room", 2, 3 * DAY_MIN, seed=31).values
    start = UNTIL - timedelta(minutes=values.shape[1])
    lines = [f"temperature,gateway=gw-h1,grid=g1,point={point} value={v!r} "
             f"{int((start + timedelta(minutes=t)).timestamp()) * 10**9}"
             for point, row in zip(POINTS, values, strict=True)
             for t, v in enumerate(row.tolist()) if v == v]
    for first in range(0, len(lines), 5000):
        body = "\n".join(lines[first:first + 5000]).encode()
        request = urllib.request.Request(f"{influx.url}/write?db={database}", data=body)
        with urllib.request.urlopen(request, timeout=30) as resp:
            assert resp.status == 204


def retrain(influx: InfluxDB, database: str, out: Path, *points: str
            ) -> subprocess.CompletedProcess[str]:
    args = [sys.executable, "-m", "temperature_anomaly.train", "retrain", "--influx-url",
            influx.url, "--database", database, "--days", "3", "--until", UNTIL.isoformat(),
            "--weeks", "2", "--scenarios", "8", "--calibration-weeks", "2", "--out", str(out),
            "--json"]
    for point in points:
        args += ["--point", point]
    return subprocess.run(args, cwd=MODELS, capture_output=True, text=True, timeout=280,
                          check=False)


def test_retrain_from_a_sites_influxdb_history(influx: tuple[InfluxDB, str],
                                              tmp_path: Path) -> None:
    server, database = influx
    write_history(server, database)
    out = tmp_path / "site.onnx"
    done = retrain(server, database, out, *POINTS)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    # two points, each scored for every minute after its first day (less dropouts)
    assert 2 * DAY_MIN < summary["site_rows"] <= 2 * 2 * DAY_MIN
    model = TemperatureModel(out)  # the edge loads it
    assert abs(model.threshold - summary["threshold"]) < 1e-3
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    peaks = json.loads(meta["calibration_peaks"])
    assert model.threshold >= peaks["site"]  # the site's own history would not have alarmed

    unknown = retrain(server, database, tmp_path / "x.onnx", "gw-h1.nowhere")
    assert unknown.returncode == 2 and "gw-h1.nowhere" in unknown.stderr
    assert not (tmp_path / "x.onnx").exists()
