"""The spine end to end, every part a real process: a simulated Modbus sensor on a pty heats up;
the edge agent reads it, raises over_temperature and publishes through a real Mosquitto; the
server writes readings to a real InfluxDB, opens exactly one incident and pushes it to the
owning grid worker's WebSocket — and not to the other grid's worker."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from websockets.sync.client import ClientConnection, connect

from gridsense_devtools.http import login, try_http_json
from gridsense_devtools.processes import Procs, wait_until
from gridsense_devtools.server_process import start_server
from gridsense_devtools.services import InfluxDB, Mosquitto

POINTS = {"gw-e2e.boiler": ("gw-e2e", "g01-a"), "gw-e2e.substation": ("gw-e2e", "g02-a")}

# The boiler (g01) heats past 60 °C a few seconds in; the substation (g02) follows later, so the
# g02 worker's own incident bounds the wait for proof that g01's incident never reached them.
SCENARIO = """
sensors:
  - slave: 1
    profile: xy-md02
    values: {temperature: 22.0, humidity: 40.0}
    script:
      - {at: 3, metric: temperature, ramp_to: 80, over_s: 4}
  - slave: 2
    profile: xy-md02
    values: {temperature: 25.0, humidity: 40.0}
    script:
      - {at: 25, metric: temperature, ramp_to: 80, over_s: 4}
"""


def gateway_yaml(link: Path, mqtt_port: int, state: Path) -> str:
    return f"""
gateway: {{id: gw-e2e, state_dir: {state}}}
mqtt: {{host: 127.0.0.1, port: {mqtt_port}, keepalive_s: 10}}
health: {{interval_s: 2}}
buses:
  - {{id: rs485-0, port: {link}, timeout_s: 0.3}}
devices:
  - {{type: modbus_temperature, point: gw-e2e.boiler, bus: rs485-0, slave: 1, profile: xy-md02,
     poll_interval_s: 0.5, refresh_interval_s: 2}}
  - {{type: modbus_temperature, point: gw-e2e.substation, bus: rs485-0, slave: 2,
     profile: xy-md02, poll_interval_s: 0.5, refresh_interval_s: 2}}
rules:
  - {{type: over_temperature, points: ["*"], threshold: 60, hysteresis: 2, min_duration_s: 1,
     severity: major}}
"""


class StreamListener:
    """Collects every message a staff member's WebSocket stream receives, in a thread."""

    def __init__(self, url: str) -> None:
        self.messages: list[dict[str, Any]] = []
        self._url = url
        self._ws: ClientConnection | None = None
        self._opened = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._opened.wait(15) or self._ws is None:
            raise AssertionError(f"WebSocket {url} did not open: {self._error!r}")

    def _run(self) -> None:
        try:
            with connect(self._url, open_timeout=10) as ws:
                self._ws = ws
                self._opened.set()
                for raw in ws:
                    self.messages.append(json.loads(raw))
        except Exception as exc:  # the connection closing ends the listener
            self._error = exc
            self._opened.set()

    def incidents(self, point: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m.get("incident", {}).get("point") == point]

    def close(self) -> None:
        if self._ws is not None:
            self._ws.close()
        self._thread.join(5)


def test_heated_sensor_becomes_one_incident_for_the_owning_worker_only(
    tmp_path: Path, mosquitto: Mosquitto, influx: tuple[InfluxDB, str], procs: Procs
) -> None:
    influx_server, db = influx
    (tmp_path / "scenario.yaml").write_text(SCENARIO)
    link = tmp_path / "ttyRS485"
    gateway_config = tmp_path / "gateway.yaml"
    gateway_config.write_text(gateway_yaml(link, mosquitto.port, tmp_path / "edge-state"))
    _server, base, _config = start_server(
        procs, tmp_path, mosquitto.port, influx_server.url, db, POINTS
    )
    ws_base = base.replace("http://", "ws://")
    g01 = StreamListener(f"{ws_base}/api/v1/stream?token={login(base, 'worker-g01')}")
    g02 = StreamListener(f"{ws_base}/api/v1/stream?token={login(base, 'worker-g02')}")
    try:
        procs.start(
            "simulator",
            "gridsense-edge",
            "simulate",
            "modbus",
            "--scenario",
            str(tmp_path / "scenario.yaml"),
            "--link",
            str(link),
        )
        wait_until(link.exists, 30, "the simulator's pty link")
        procs.start("edge", "gridsense-edge", "run", "--config", str(gateway_config))

        try:
            wait_until(lambda: g01.incidents("gw-e2e.boiler"), 90, "g01 worker's boiler incident")
            wait_until(
                lambda: g02.incidents("gw-e2e.substation"), 90, "g02 worker's substation incident"
            )
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{procs.logs()}") from None

        first = g01.incidents("gw-e2e.boiler")[0]["incident"]
        assert first["type"] == "over_temperature"
        assert first["grid"] == "g01-a"
        assert first["severity"] == "major"
        assert g02.incidents("gw-e2e.boiler") == [], "g02's worker must not see g01's incident"
        assert g01.incidents("gw-e2e.substation") == [], "g01's worker must not see g02's incident"
    finally:
        g01.close()
        g02.close()

    control = login(base, "control")
    incidents = try_http_json("GET", f"{base}/api/v1/incidents", control)
    boiler = [i for i in incidents if i["point"] == "gw-e2e.boiler"]
    assert len(boiler) == 1, incidents
    assert boiler[0]["type"] == "over_temperature" and boiler[0]["state"] == "new"
    worker_view = try_http_json("GET", f"{base}/api/v1/incidents", login(base, "worker-g02"))
    assert {i["point"] for i in worker_view} == {"gw-e2e.substation"}

    # Readings reached InfluxDB with their grid tags and the edge's timestamps.
    def readings() -> list[dict[str, Any]]:
        return influx_server.points(
            'SELECT "value", "grid", "gateway" FROM "temperature" '
            "WHERE \"point\" = 'gw-e2e.boiler'",
            db,
        )

    rows = wait_until(
        lambda: len(readings()) >= 3 and readings(), 30, "boiler readings in InfluxDB"
    )
    assert {r["grid"] for r in rows} == {"g01-a"}
    assert {r["gateway"] for r in rows} == {"gw-e2e"}
    assert max(r["value"] for r in rows) > 60
    assert 20 <= min(r["value"] for r in rows) <= 25

    gateways = try_http_json("GET", f"{base}/api/v1/gateways", control)
    assert [g["state"] for g in gateways if g["id"] == "gw-e2e"] == ["online"]
