"""The Grafana dashboards of ops/grafana/dashboards as tests read them: every query, with
Grafana's macros replaced by fixed values so InfluxDB, Prometheus and VictoriaMetrics can run it,
and the measurement, field and metric names it uses."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# The repository's dashboards (this package is installed from the source tree, editable).
DASHBOARDS = Path(__file__).resolve().parents[3] / "ops" / "grafana" / "dashboards"

INFLUX_MACROS = {"$timeFilter": "time > now() - 1h", "$__interval": "1m",
                 "/^$grid$/": "/^.*$/"}
PROM_MACROS = {"$__rate_interval": "5m", "$__interval": "1h", '"$grid"': '".*"'}
_GROUPING = re.compile(r"\b(?:by|without)\s*\([^)]*\)")
_METRIC = re.compile(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(?=[{\[)])")
_FROM = re.compile(r'\bFROM\s+"([^"]+)"')
_QUOTED = re.compile(r'"([^"]+)"')
_AGGREGATED = re.compile(r'\b(?:mean|sum|max|min|count|last)\("([^"]+)"\)')


@dataclass(frozen=True)
class Query:
    dashboard: str
    where: str  # panel title / refId, or the template variable
    datasource: str  # the datasource uid
    text: str  # as Grafana has it

    def runnable(self) -> str:
        macros = INFLUX_MACROS if self.datasource == "gridsense-influxdb" else PROM_MACROS
        text = self.text
        for macro, value in macros.items():
            text = text.replace(macro, value)
        assert not re.search(r"\$\w", text), f"{self.where}: an unknown macro in {text!r}"
        return text


def dashboard_files() -> list[Path]:
    return sorted(DASHBOARDS.glob("*.json"))


def queries(path: Path) -> Iterator[Query]:
    board = json.loads(path.read_text(encoding="utf-8"))
    for variable in board.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            yield Query(path.name, f"variable {variable['name']}",
                        variable["datasource"]["uid"], variable["query"])
    for panel in board["panels"]:
        for target in panel["targets"]:
            text = target.get("query") if "query" in target else target["expr"]
            yield Query(path.name, f"{panel['title']} / {target['refId']}",
                        target["datasource"]["uid"], text)


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL/MetricsQL expression selects (grouping labels left out);
    of Grafana's ``label_values(metric, label)``, the metric."""
    if expr.startswith("label_values("):
        return {expr.removeprefix("label_values(").split(",")[0].strip()}
    stripped = _GROUPING.sub("", expr)
    functions = {m.group(1) for m in re.finditer(r"\b([a-z_]+)\s*\(", stripped)}
    return {name for name in _METRIC.findall(stripped) if name not in functions}


def influx_names(query: str) -> tuple[str, set[str], set[str]]:
    """(measurement, fields aggregated, every other quoted identifier: fields or tags)."""
    found = _FROM.search(query)
    assert found, f"no FROM in {query!r}"
    measurement = found.group(1)
    fields = set(_AGGREGATED.findall(query))
    return measurement, fields, set(_QUOTED.findall(query)) - {measurement}
