"""Which store stands behind the writer and the charts: chosen by ``timeseries.kind``."""

from __future__ import annotations

from ..config import InfluxConfig
from ..counters import Counters
from .influx_http import InfluxHttp
from .reader import InfluxQLReader, SeriesReader


def store_http(config: InfluxConfig, counters: Counters, request_timeout_s: float) -> InfluxHttp:
    if config.kind == "influxdb-v2":
        from .influx_v2 import InfluxV2Http  # influxdb-client is loaded only when used

        return InfluxV2Http(config, counters, request_timeout_s)
    return InfluxHttp(config, counters, request_timeout_s)


def series_reader(http: InfluxHttp) -> SeriesReader:
    if http.config.kind == "victoriametrics":
        from .victoria_reader import VictoriaReader

        return VictoriaReader(http)
    return InfluxQLReader(http)
