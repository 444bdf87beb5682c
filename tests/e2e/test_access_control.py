"""Access control end to end, every part a real process: a libosdp reader simulator on a pty,
the edge agent as its control panel, a real Mosquitto, the server with its database and a real
InfluxDB. Credentials are entered through the API and synced to the gateway; decisions hold
online and offline; revocations reach the gateway online and after it reconnects; a forced door
becomes a door_forced incident for the grid worker who owns the door's point."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from access_support import ReaderSimulator, write_key

from gridsense_devtools.http import http_json, login, try_http_json
from gridsense_devtools.processes import Proc, Procs, wait_until
from gridsense_devtools.server_process import start_server
from gridsense_devtools.services import InfluxDB, Mosquitto

POINT = "gw-acc.entrance"
POINTS = {POINT: ("gw-acc", "g01-a")}


def gateway_yaml(link: Path, key: Path, mqtt_port: int, state: Path) -> str:
    return f"""
gateway: {{id: gw-acc, state_dir: {state}}}
mqtt: {{host: 127.0.0.1, port: {mqtt_port}, keepalive_s: 5, reconnect_max_s: 2}}
health: {{interval_s: 2}}
devices:
  - {{type: osdp_reader, point: {POINT}, port: {link}, address: 1, key_file: {key},
     door: b1-main, building: b1, denied_burst: 50}}
"""


class Rig:
    def __init__(self, base: str, token: str, sim: ReaderSimulator, procs: Procs,
                 config: Path) -> None:
        self.base, self.token, self.sim, self.procs, self.config = base, token, sim, procs, config
        self.agent: Proc | None = None
        self.agents = 0

    def start_agent(self) -> None:
        self.agents += 1
        self.agent = self.procs.start(f"agent-{self.agents}", "gridsense-edge", "run",
                                      "--config", str(self.config))

    def agent_log(self, event: str) -> int:
        assert self.agent is not None
        return len(re.findall(rf"event={event}\b", self.agent.log()))

    def events(self, **query: str) -> list[dict[str, Any]]:
        params = "&".join(f"{k}={v}" for k, v in query.items())
        return try_http_json("GET", f"{self.base}/api/v1/access-events?{params}",
                             self.token) or []

    def swipe_until(self, number: int, result: str, reason: str | None = None) -> dict[str, Any]:
        """Present the card until the access log shows ``result`` for a swipe of it."""
        seen: set[str] = set()

        def attempt() -> dict[str, Any] | None:
            for event in self.events(door="b1-main", limit="500"):
                seen.add(event["event_id"])
            self.sim.act(do="card", reader=1, number=number)
            return None

        def found() -> dict[str, Any] | None:
            for event in self.events(door="b1-main", limit="500"):
                if (event["event_id"] not in seen and event["result"] == result
                        and (reason is None or event["reason"] == reason)):
                    return event
            return None

        attempt()
        return wait_until(found, 30, f"card {number} -> {result} {reason or ''}")


def test_credentials_sync_decisions_revocation_offline_and_forced_door(
    tmp_path: Path, mosquitto: Mosquitto, influx: tuple[InfluxDB, str], procs: Procs
) -> None:
    influx_server, db = influx
    _server, base, _ = start_server(procs, tmp_path, mosquitto.port, influx_server.url, db,
                                    POINTS)
    control = login(base, "control")
    for ident, card in (("alice", "100200"), ("bob", "300400")):
        http_json("POST", f"{base}/api/v1/communities/ly/credentials", control,
                  {"id": ident, "holder": ident.title(), "card": card, "doors": ["b1-main"]})
    link, key = tmp_path / "ttyOSDP0", write_key(tmp_path / "reader.key")
    sim = ReaderSimulator(link, {1: key}, tmp_path / "simulator.log")
    config = tmp_path / "gateway.yaml"
    config.write_text(gateway_yaml(link, key, mosquitto.port, tmp_path / "edge-state"))
    rig = Rig(base, control, sim, procs, config)
    try:
        rig.start_agent()
        wait_until(lambda: rig.agent_log("credentials_snapshot"), 60, "the first sync")

        # online: grant with the lock pulsed, deny an unknown card
        granted = rig.swipe_until(100200, "granted")
        assert granted["credential"] == "alice" and granted["offline"] is False
        assert granted["card"] and "100200" not in granted["card"]
        wait_until(lambda: sim.commands("output"), 10, "the lock output command")
        denied = rig.swipe_until(999, "denied", "unknown")
        assert denied["credential"] is None

        # revocation while online: pushed at once, refused at the door
        deltas = rig.agent_log("credentials_delta")
        http_json("DELETE", f"{base}/api/v1/credentials/bob", control)
        wait_until(lambda: rig.agent_log("credentials_delta") > deltas, 30, "the revocation")
        assert rig.swipe_until(300400, "denied", "revoked")["credential"] == "bob"

        # uplink down: the door still decides from the local copy
        mosquitto.stop()
        locks = len(sim.commands("output"))
        sim.act(do="card", reader=1, number=100200)
        wait_until(lambda: len(sim.commands("output")) > locks, 20, "an offline grant")
        reds = len([c for c in sim.commands("led") if c["args"]["on_color"] == 1])
        sim.act(do="card", reader=1, number=999)
        wait_until(lambda: len([c for c in sim.commands("led") if c["args"]["on_color"] == 1])
                   > reds, 20, "an offline denial (red LED)")
        assert len(sim.commands("output")) == locks + 1  # the unknown card did not unlock
        mosquitto.start()
        offline = wait_until(lambda: [e for e in rig.events(credential="alice")
                                      if e["offline"]], 60, "the offline grant in the log")
        assert offline[0]["result"] == "granted"

        # revocation while the gateway is away: applied when it reconnects
        assert rig.agent is not None
        rig.agent.stop()
        http_json("DELETE", f"{base}/api/v1/credentials/alice", control)
        rig.start_agent()
        wait_until(lambda: rig.agent_log("credentials_(delta|snapshot)"), 60,
                   "the sync after reconnecting")
        rig.swipe_until(100200, "denied", "revoked")

        # a forced door: an incident for the owning grid's worker, not the other grid's
        sim.act(do="close", reader=1)
        sim.act(do="open", reader=1)
        worker = login(base, "worker-g01")
        forced = wait_until(lambda: [i for i in try_http_json(
            "GET", f"{base}/api/v1/incidents", worker) or [] if i["type"] == "door_forced"],
            60, "door_forced for worker-g01")
        assert forced[0]["point"] == POINT
        other = try_http_json("GET", f"{base}/api/v1/incidents", login(base, "worker-g02"))
        assert not [i for i in other if i["type"] == "door_forced"]

        # every access event also in InfluxDB, tagged
        rows = wait_until(lambda: influx_server.points(
            'SELECT "count", "grid", "door", "result" FROM "access"', db), 30, "access rows")
        assert {r["grid"] for r in rows} == {"g01-a"} and {r["door"] for r in rows} == {"b1-main"}
        assert {"granted", "denied"} <= {r["result"] for r in rows}
        for log in tmp_path.glob("*.log"):  # agents, server, simulator: no card in clear
            assert "100200" not in log.read_text(errors="replace"), log.name
    finally:
        sim.stop()
