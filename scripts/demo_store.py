"""The demo's time-series store: InfluxDB 1.x (the default) or VictoriaMetrics
(``scripts/demo --timeseries victoriametrics``), each private under the demo's folder."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from gridsense_devtools.scrapers import VictoriaMetrics
from gridsense_devtools.services import InfluxDB

DATABASE = "gridsense"


@dataclass
class DemoStore:
    kind: str  # the server's timeseries.kind
    label: str
    service: InfluxDB | VictoriaMetrics

    @property
    def url(self) -> str:
        return self.service.url

    @property
    def pid(self) -> int | str:
        return self.service.proc.pid if self.service.proc else "?"

    def start(self) -> None:
        self.service.start()

    def stop(self) -> None:
        self.service.stop()

    def server_section(self, **more: object) -> dict[str, object]:
        return {"kind": self.kind, "url": self.url, "database": DATABASE, "batch_size": 5000,
                "flush_interval_s": 1.0, **more}

    def stored_readings(self) -> int:
        """Every temperature reading the store holds, of any time (VictoriaMetrics flushed
        first, then its raw samples counted: its queries look back a bounded window)."""
        if isinstance(self.service, InfluxDB):
            rows = self.service.points('SELECT count("value") FROM "temperature"', DATABASE)
            return int(rows[0]["count"]) if rows else 0
        with urllib.request.urlopen(f"{self.url}/internal/force_flush", timeout=60) as resp:
            resp.read()
        query = urllib.parse.urlencode({"match[]": '{__name__="temperature_value"}',
                                        "start": "0"})
        total = 0
        with urllib.request.urlopen(f"{self.url}/api/v1/export?{query}", timeout=600) as resp:
            for line in resp:
                if line.strip():
                    total += len(json.loads(line)["values"])
        return total

    def readings_per_point(self) -> dict[str, int]:
        """How many temperature readings each point has in the store."""
        if isinstance(self.service, InfluxDB):
            rows = self.service.points('SELECT count("value") FROM "temperature" '
                                       'GROUP BY "point"', DATABASE)
            return {row["point"]: int(row["count"]) for row in rows}
        result = self.service.query(
            'sum by (point) (count_over_time(temperature_value{class=""}[1d]))')
        return {r["metric"]["point"]: int(float(r["value"][1])) for r in result}


def demo_store(kind: str, folder: Path, influx_port: int, victoria_port: int) -> DemoStore:
    if kind == "victoriametrics":
        return DemoStore("victoriametrics", "VictoriaMetrics",
                         VictoriaMetrics(folder / "victoriametrics", victoria_port))
    return DemoStore("influxdb-v1", "InfluxDB", InfluxDB(folder / "influxdb", influx_port))
