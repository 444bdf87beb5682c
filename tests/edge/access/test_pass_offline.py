"""A revocation synced over MQTT holds once the uplink is gone: the real agent, a real
Mosquitto behind a proxy that is cut, a real libosdp reader presenting a compact pass."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
import paho.mqtt.publish as paho_publish
from edge_support import AgentProcess, BlackholeProxy, MqttRecorder, wait_until, write_config
from osdp_support import KEYS, write_key
from pass_support import compact, make_pass, pass_keys, record

from gridsense_devtools.services import Mosquitto
from gridsense_edge.simulator.osdp import OsdpReaderSimulator, SimulatedReader
from gridsense_protocol import AccessEvent, Command, CommandResult, Kind, encode, topic_for

GW = "gw-po"
SECRET = bytes(range(60, 92))


def _command(seq: int, **args: object) -> bytes:
    return encode(Command(gateway=GW, seq=seq, ts=datetime.now(UTC), name="access_sync",
                          args=args))


def test_a_pass_revoked_before_the_uplink_went_is_refused_offline(
    tmp_path: Path, mosquitto: Mosquitto, agents: Callable[[Path], AgentProcess]
) -> None:
    now = int(time.time())
    resident = make_pass(uses=0, not_before=now - 60, not_after=now + 3600)
    visitor = make_pass(uses=0, not_before=now - 60, not_after=now + 3600)
    link = tmp_path / "ttyOSDP"
    sim = OsdpReaderSimulator(link, [SimulatedReader(1, KEYS[1])])
    sim.start()
    proxy = BlackholeProxy(mosquitto.port)
    recorder = MqttRecorder(mosquitto.port).start()
    try:
        config = write_config(tmp_path / "gw.yaml", {
            "gateway": {"id": GW, "state_dir": str(tmp_path / "state")},
            "mqtt": {"host": "127.0.0.1", "port": proxy.port, "keepalive_s": 5,
                     "reconnect_max_s": 2},
            "devices": [{"type": "osdp_reader", "point": f"{GW}.door", "port": str(link),
                         "address": 1, "key_file": str(write_key(tmp_path, 1)),
                         "door": "b3-east", "pass_clock": "rtc"}],
        })
        agent = agents(config)
        wait_until(lambda: "event=mqtt_connected" in agent.log(), 30, "the agent's uplink")
        wait_until(lambda: "event=osdp_reader_online" in agent.log(), 30, "the reader")
        send = functools.partial(paho_publish.single, topic_for(GW, Kind.CMD), qos=1,
                                 hostname="127.0.0.1", port=mosquitto.port,
                                 protocol=mqtt.MQTTv5)
        send(payload=_command(1, mode="snapshot", version=1, secret=SECRET.hex(),
                              credentials=[], pass_keys=pass_keys(),
                              passes=[record(resident), record(visitor)]))
        send(payload=_command(2, mode="delta", base=1, version=2,
                              revoked_passes=[visitor.pass_id]))

        def synced() -> bool:
            return any(isinstance(m, CommandResult) and m.result == {"credentials_version": 2}
                       for m in recorder.messages(Kind.CMD_RESULT))

        wait_until(synced, 30, "the revocation applied")
        proxy.cut()
        wait_until(lambda: "event=mqtt_disconnected" in agent.log(), 60, "the uplink gone")
        since = time.monotonic()
        sim.present_scan(1, compact(visitor))
        wait_until(lambda: "reason=revoked" in agent.log(), 30, "the revoked pass decided")
        sim.present_scan(1, compact(resident))
        assert sim.wait_for_command(lambda c: c.name == "output", 15, since) is not None
        proxy.restore()

        def events() -> list[AccessEvent]:
            return [m for m in recorder.messages(Kind.ACCESS) if isinstance(m, AccessEvent)
                    and m.method == "pass"]

        wait_until(lambda: len(events()) >= 2, 60, "both access events after reconnecting")
        denied, granted = events()[:2]
        assert (denied.result.value, denied.reason, denied.pass_id, denied.offline) == (
            "denied", "revoked", visitor.pass_id, True)
        assert denied.credential == visitor.holder
        assert (granted.result.value, granted.pass_id, granted.offline) == (
            "granted", resident.pass_id, True)
    finally:
        recorder.stop()
        proxy.close()
        sim.stop()
