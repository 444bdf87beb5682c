"""A configuration pushed while the gateway's uplink is cut (a link gone dark, not refused:
the broker still holds the gateway's old session) applies once the link is back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from gridsense_devtools.http import http_json, login
from gridsense_devtools.processes import Procs
from gridsense_devtools.server_process import start_server
from gridsense_devtools.services import InfluxDB, Mosquitto
from gridsense_protocol.gateway_config import config_hash

from tcp_proxy import CuttableProxy

GATEWAY = "gw-cut"


def test_a_version_pushed_during_an_uplink_cut_applies_after_it(
        tmp_path: Path, mosquitto: Mosquitto, influx: tuple[InfluxDB, str]) -> None:
    procs = Procs(tmp_path)
    try:
        with CuttableProxy(mosquitto.port) as proxy:
            _server, base, _config = start_server(procs, tmp_path, mosquitto.port,
                                                  influx[0].url, influx[1],
                                                  {"gw-cut.boiler": (GATEWAY, "g01-a")})
            token = login(base, "control")
            document: dict[str, Any] = {
                "gateway": {"id": GATEWAY, "state_dir": str(tmp_path / "edge-state")},
                "mqtt": {"host": "127.0.0.1", "port": proxy.port, "keepalive_s": 5,
                         "reconnect_max_s": 2},
                "remote": {"health_window_s": 10},
                "rules": [{"type": "over_temperature", "points": ["*"], "threshold": 60}],
            }
            (tmp_path / "gateway.yaml").write_text(yaml.safe_dump(document))
            edge = procs.start("edge", "gridsense-edge", "run", "--config",
                               str(tmp_path / "gateway.yaml"))
            url = f"{base}/api/v1/gateways/{GATEWAY}/config"

            def status() -> dict[str, Any]:
                got: dict[str, Any] = http_json("GET", url, token)["status"]
                return got

            procs.wait_until(lambda: "event=mqtt_connected" in edge.log(), 30,
                             "the gateway connected through the link")
            proxy.cut()
            document["rules"][0]["threshold"] = 69
            http_json("POST", url, token, {"document": document, "reason": "断网时下发"})
            procs.wait_until(lambda: status()["pushed_version"] == 1, 30,
                             "the server publishing version 1")
            assert status()["last_state"] is None  # nothing came back through the cut
            proxy.restore()
            try:
                procs.wait_until(lambda: status()["last_version"] == 1, 90,
                                 "the gateway's report once the link is back")
            except AssertionError as exc:
                raise AssertionError(f"{exc}\n{procs.logs()}") from None
            final = status()
            assert final["last_state"] == "applied", final
            assert final["running_hash"] == config_hash(document)
    finally:
        procs.stop_all()
