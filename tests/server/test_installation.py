"""The installer's draft configuration on the running server: each discovered device assigned
to a point registers that point (name, grid, place) and its threshold becomes a rule; the saved
configuration is one the gateway's own config models accept; what the server owns is refused
with the field named (a grid not the installer's, a point of another gateway, a device the
draft does not have). The new point then shows in the commissioning report with its reading."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import yaml
from api_client import Api
from commissioning_support import APP_ONLY_INSTALLER, server_yaml, with_installer
from conftest import ServerFactory
from server_helpers import EdgePublisher, async_wait_until

from gridsense_edge.config import load_config

INSTALL = "/api/v1/gateways/gw-01/installation"
# As `gridsense-edge discover` drafts it: one bus, two sensors, points not yet chosen.
DISCOVERED: dict[str, Any] = {
    "gateway": {"id": "gw-01", "state_dir": "./state/gw-01"},
    "buses": [{"id": "rs485-0", "port": "/dev/ttyUSB0", "timeout_s": 0.5}],
    "devices": [
        {"type": "modbus_temperature", "point": "gw-01.modbus-1", "bus": "rs485-0",
         "slave": 1, "profile": "xy-md02"},
        {"type": "modbus_temperature", "point": "gw-01.modbus-3", "bus": "rs485-0",
         "slave": 3, "profile": "pt100-transmitter"},
    ],
}
BOILER_2 = {"device": 0, "id": "gw-01.boiler-2", "name": "2号锅炉", "grid": "g01",
            "location": "1号楼 B1", "thresholds": {"temperature": 60}}


def _body(**point: Any) -> dict[str, Any]:
    return {"config": copy.deepcopy(DISCOVERED), "points": [{**BOILER_2, **point}]}


async def test_a_saved_draft_registers_its_points_and_is_a_valid_gateway_config(
    db_url: str, tmp_path: Path, start_server: ServerFactory, registry_file: Path,
    edge: EdgePublisher,
) -> None:
    with_installer(registry_file, APP_ONLY_INSTALLER)
    server = await start_server(extra_yaml=server_yaml(None))
    async with httpx.AsyncClient(base_url=server.http_url, trust_env=False, timeout=30) as http:
        api = Api(http)
        saved = await api.as_("installer-ly", "PUT", INSTALL, json=_body())
        assert saved.status_code == 200, saved.text
        answer = saved.json()
        assert answer["registry"]["point.created"] == 1
        config = answer["config"]
        assert config["devices"][0]["point"] == "gw-01.boiler-2"
        assert config["devices"][1]["point"] == "gw-01.modbus-3"  # not assigned: as drafted
        assert config["rules"] == [{"type": "over_temperature", "points": ["gw-01.boiler-2"],
                                    "metric": "temperature", "threshold": 60.0}]
        path = tmp_path / "gw-01.yaml"
        path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
        edge_config = load_config(path)  # the gateway's own models accept it
        assert [d.point for d in edge_config.devices] == ["gw-01.boiler-2", "gw-01.modbus-3"]

        points = {p["id"]: p for p in await api.json("control", "/api/v1/registry/points")}
        assert points["gw-01.boiler-2"]["point_name"] == "2号锅炉"
        # A draft without the connection is kept, not pushed: the gateway would lose its broker.
        assert answer["pushed"]["version"] is None and "mqtt" in answer["pushed"]["reason"]

        # Drafted from the running configuration (discover --config), it is whole: it becomes
        # the gateway's next remote version, so nobody copies a file to the gateway.
        whole = _body()
        whole["config"]["mqtt"] = {"host": "127.0.0.1", "port": 1883}
        pushed = await api.as_("installer-ly", "PUT", INSTALL, json=whole)
        assert pushed.status_code == 200, pushed.text
        assert pushed.json()["pushed"] == {"version": 1, "reason": None}
        config_state = await api.json("control", "/api/v1/gateways/gw-01/config")
        assert config_state["status"]["desired_version"] == 1, config_state
        assert config_state["document"]["devices"][0]["point"] == "gw-01.boiler-2"
        same = await api.as_("installer-ly", "PUT", INSTALL, json=whole)
        assert same.json()["pushed"] == {"version": 1, "reason": "unchanged"}

        # Saved again with another threshold: the rule is replaced, not added.
        again = await api.as_("installer-ly", "PUT", INSTALL, json=_body(
            thresholds={"temperature": 55}))
        assert again.status_code == 200, again.text
        assert [r["threshold"] for r in again.json()["config"]["rules"]] == [55.0]
        stored = await api.json("installer-ly", INSTALL)
        assert stored["saved_by"] == "installer-ly"
        assert stored["config"]["rules"][0]["threshold"] == 55.0
        assert "gw-01.boiler-2" in [p["id"] for p in stored["points"]]

        refusals = {
            "grid": (_body(grid="g02"), 403, "g02"),
            "owner": (_body(id="gw-02.boiler"), 409, "gw-02"),
            "device": (_body(device=5), 422, "points[0].device"),
            "unknown grid": (_body(grid="g99"), 422, "g99"),
            "gateway": ({"config": {**DISCOVERED, "gateway": {"id": "gw-02"}}, "points": []},
                        422, "config.gateway.id"),
            "twice": ({"config": DISCOVERED, "points": [BOILER_2, {**BOILER_2, "device": 1}]},
                      422, "gw-01.boiler-2"),
        }
        for case, (body, status, named) in refusals.items():
            reply = await api.as_("installer-ly", "PUT", INSTALL, json=body)
            assert reply.status_code == status, (case, reply.text)
            assert named in reply.text, case
        worker = await api.as_("worker-g01", "PUT", INSTALL, json=_body())
        assert worker.status_code == 403
        missing = await api.as_("control", "PUT", "/api/v1/gateways/gw-77/installation",
                                json=_body())
        assert missing.status_code == 404

        # The new point reports; commissioning finds its first reading.
        at = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
        edge.publish(edge.telemetry([("gw-01.boiler-2", "temperature", 24.0, at)]))
        started = await api.as_("installer-ly", "POST", "/api/v1/gateways/gw-01/commissioning",
                                json={})
        assert started.status_code == 201, started.text

        async def reported() -> dict[str, Any] | None:
            report = await api.json("installer-ly", f"/api/v1/commissioning/{started.json()['id']}")
            point = {p["point"]: p for p in report["points"]}["gw-01.boiler-2"]
            return point if point["ok"] else None

        point = await async_wait_until(reported, 60, "the new point's first reading")
        assert point["first"] == [{"metric": "temperature", "value": 24.0,
                                   "t": at.isoformat()}]
        assert point["name"] == "2号锅炉" and point["grid_name"] == "第一网格"
