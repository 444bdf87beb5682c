"""Private Prometheus and VictoriaMetrics (Debian's packages), each in a folder of its own, for
the metrics and dashboard tests: they scrape a server's /metrics and answer the dashboards'
queries through their Prometheus-compatible HTTP API. VictoriaMetrics also takes InfluxDB line
protocol on ``/write``, so a server can use it as its time-series store.
"""

from __future__ import annotations

import json
import shutil
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gridsense_devtools.services import _Service, _tail


@dataclass(frozen=True)
class ScrapeTarget:
    """One server to scrape: ``host:port`` and, for the public port, the token file."""

    address: str
    token_file: Path | None = None

    def job(self, name: str, interval_s: float) -> dict[str, Any]:
        job: dict[str, Any] = {"job_name": name, "metrics_path": "/metrics",
                               "scrape_interval": f"{interval_s:g}s",
                               "static_configs": [{"targets": [self.address]}]}
        if self.token_file is not None:
            job["authorization"] = {"type": "Bearer", "credentials_file": str(self.token_file)}
        return job


@dataclass
class _PromApi(_Service):
    targets: list[ScrapeTarget] = field(default_factory=list)
    scrape_interval_s: float = 1.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def write_scrape_config(self) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / "scrape.yaml"
        jobs = [t.job(f"gridsense-{n}", self.scrape_interval_s)
                for n, t in enumerate(self.targets)]
        path.write_text(yaml.safe_dump({"scrape_configs": jobs}), encoding="utf-8")
        return path

    def api(self, path: str, **params: str) -> Any:
        """One call of the Prometheus HTTP API (``/api/v1/...``); the decoded ``data``, or
        RuntimeError with the answer when it is not a success."""
        query = urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(f"{self.url}{path}?{query}", timeout=10) as resp:
                body = json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"{path} {params}: HTTP {exc.code} {exc.read()[:500]!r}") from None
        if body.get("status") != "success":
            raise RuntimeError(f"{path} {params}: {body}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        return list(self.api("/api/v1/query", query=expr)["result"])

    def series(self, selector: str) -> list[dict[str, str]]:
        return list(self.api("/api/v1/series", **{"match[]": selector}))

    ready_path = "/"

    def argv(self, config: Path) -> list[str]:
        raise NotImplementedError

    def start(self, timeout: float = 30.0) -> _PromApi:
        """Start with the scrape config of ``targets``; returns once it answers."""
        self._spawn(self.argv(self.write_scrape_config()), timeout)
        self._wait_ready(self.ready_path, timeout)
        return self

    def _wait_ready(self, path: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}{path}", timeout=1) as resp:
                    if resp.status == 200:
                        return
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.1)
        raise TimeoutError(f"{self.url}{path} not ready; log:\n{_tail(self.log_path)}")


def _binary(name: str) -> str:
    found = shutil.which(name) or f"/usr/bin/{name}"
    if not Path(found).exists():
        raise RuntimeError(f"{name} is not installed (apt-get install {name})")
    return found


@dataclass
class Prometheus(_PromApi):
    ready_path = "/-/ready"

    def argv(self, config: Path) -> list[str]:
        return [_binary("prometheus"), f"--config.file={config}",
                f"--storage.tsdb.path={self.directory / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}"]


@dataclass
class VictoriaMetrics(_PromApi):
    ready_path = "/health"

    def argv(self, config: Path) -> list[str]:
        return [_binary("victoria-metrics"), f"-storageDataPath={self.directory / 'data'}",
                f"-httpListenAddr=127.0.0.1:{self.port}", f"-promscrape.config={config}",
                # Answer with what was just written (its default hides the last 30 s).
                "-search.latencyOffset=0s", "-search.disableCache"]
