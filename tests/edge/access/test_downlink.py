"""The agent's downlink with a real Mosquitto and a real reader: garbage and unknown commands
on its cmd topic are counted and answered, never fatal; a credential snapshot sent as a
command opens the door to a card; the sync also reaches an agent that was stopped."""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
import paho.mqtt.publish as paho_publish
from edge_support import AgentProcess, MqttRecorder, wait_until, write_config
from osdp_support import KEYS, write_key

from gridsense_devtools.services import Mosquitto
from gridsense_edge.drivers.osdp.credentials import card_hash
from gridsense_edge.simulator.osdp import OsdpReaderSimulator, SimulatedReader
from gridsense_protocol import Command, CommandResult, Health, Kind, encode, topic_for

GW = "gw-dl"
SECRET = bytes(range(50, 82))


def _command(seq: int, name: str, **args: object) -> bytes:
    return encode(Command(gateway=GW, seq=seq, ts=datetime.now(UTC), name=name, args=args))


def _snapshot(seq: int, version: int, cards: dict[str, str]) -> bytes:
    credentials = [[ident, card_hash(SECRET, card), None, None, None, ["*"], []]
                   for ident, card in cards.items()]
    return _command(seq, "access_sync", mode="snapshot", version=version, secret=SECRET.hex(),
                    credentials=credentials)


@contextlib.contextmanager
def _reader_and_recorder(tmp_path: Path, mqtt_port: int
                         ) -> Iterator[tuple[Path, OsdpReaderSimulator, MqttRecorder]]:
    """A simulated reader (address 1) on a pseudo-terminal, and a recorder of the broker."""
    link = tmp_path / "ttyOSDP"
    sim = OsdpReaderSimulator(link, [SimulatedReader(1, KEYS[1])])
    sim.start()
    recorder = MqttRecorder(mqtt_port).start()
    try:
        yield link, sim, recorder
    finally:
        recorder.stop()
        sim.stop()


def _gateway_config(tmp_path: Path, link: Path, mqtt_port: int, **extra: object) -> Path:
    """One gateway with one OSDP reader (address 1) on ``link``."""
    return write_config(tmp_path / "gw.yaml", {
        "gateway": {"id": GW, "state_dir": str(tmp_path / "state")},
        "mqtt": {"host": "127.0.0.1", "port": mqtt_port, "keepalive_s": 5},
        "devices": [{"type": "osdp_reader", "point": f"{GW}.door", "port": str(link),
                     "address": 1, "key_file": str(write_key(tmp_path, 1))}],
        **extra,
    })


def test_downlink_garbage_unknown_commands_and_a_snapshot(
    tmp_path: Path, mosquitto: Mosquitto, agents: Callable[[Path], AgentProcess]
) -> None:
    with _reader_and_recorder(tmp_path, mosquitto.port) as (link, sim, recorder):
        config = _gateway_config(tmp_path, link, mosquitto.port, health={"interval_s": 1})
        agent = agents(config)
        wait_until(lambda: "event=mqtt_connected" in agent.log(), 30, "the agent's uplink")
        wait_until(lambda: "event=osdp_reader_online" in agent.log(), 30, "the reader online")
        cmd = topic_for(GW, Kind.CMD)
        send = functools.partial(paho_publish.single, cmd, qos=1, hostname="127.0.0.1",
                                 port=mosquitto.port, protocol=mqtt.MQTTv5)
        send(payload=b"\x00garbage{")
        send(payload=_command(1, "self_destruct"))
        send(payload=_snapshot(2, 7, {"alice": "100200"}))

        def results() -> list[CommandResult]:
            return [m for m in recorder.messages(Kind.CMD_RESULT)
                    if isinstance(m, CommandResult)]

        wait_until(lambda: len(results()) >= 2, 30, "two command results")
        unknown, synced = results()[:2]
        assert not unknown.ok and "unknown command" in (unknown.error or "")
        assert synced.ok and synced.result == {"credentials_version": 7}
        since = time.monotonic()
        sim.present_card(1, 100200)
        assert sim.wait_for_command(lambda c: c.name == "output", 15, since) is not None

        def invalid_counted() -> bool:
            return any(h.counters.get("mqtt_downlink_invalid", 0) >= 1
                       for h in recorder.messages(Kind.HEALTH) if isinstance(h, Health))

        wait_until(invalid_counted, 30, "downlink_invalid in health")
        assert agent.proc.poll() is None

        # stopped agent: a revocation waits in its persistent session and applies on start
        agent.stop()
        send(payload=_command(3, "access_sync", mode="delta", base=7, version=8,
                              credentials=[], revoked=["alice"]))
        agent = agents(config)
        wait_until(lambda: any(r.result == {"credentials_version": 8} for r in results()), 30,
                   "the queued revocation applied after restart")
        wait_until(lambda: "event=osdp_reader_online" in agent.log(), 30, "reader back")
        locks = len([c for c in sim.commands if c.name == "output"])
        reds_before = len([c for c in sim.commands if c.name == "led"
                           and c.args["on_color"] == 1])
        sim.present_card(1, 100200)
        wait_until(lambda: len([c for c in sim.commands if c.name == "led"
                                and c.args["on_color"] == 1]) > reds_before, 15, "denied")
        assert len([c for c in sim.commands if c.name == "output"]) == locks


def test_a_10000_credential_snapshot_in_parts_survives_a_lost_part_and_a_restart(
    tmp_path: Path, mosquitto: Mosquitto, agents: Callable[[Path], AgentProcess]
) -> None:
    with _reader_and_recorder(tmp_path, mosquitto.port) as (link, sim, recorder):
        config = _gateway_config(tmp_path, link, mosquitto.port)
        agent = agents(config)
        wait_until(lambda: "event=mqtt_connected" in agent.log(), 30, "the agent's uplink")
        send = functools.partial(paho_publish.single, topic_for(GW, Kind.CMD), qos=1,
                                 hostname="127.0.0.1", port=mosquitto.port,
                                 protocol=mqtt.MQTTv5)
        credentials = [[f"r-{i:05d}", card_hash(SECRET, str(10**7 + i)), None, None, None,
                        ["*"], []] for i in range(10_000)]
        parts = [credentials[i:i + 2500] for i in range(0, 10_000, 2500)]

        def part(index: int) -> bytes:
            payload = _command(10 + index, "access_sync", mode="snapshot", version=3,
                               secret=SECRET.hex(), credentials=parts[index], part=index,
                               parts=len(parts))
            assert len(payload) <= 256 * 1024
            return payload

        def results() -> list[CommandResult]:
            return [m for m in recorder.messages(Kind.CMD_RESULT)
                    if isinstance(m, CommandResult)]

        for index in (0, 2, 3):  # part 1 lost on the way
            send(payload=part(index))
        wait_until(lambda: any(r.result.get("sync") == "needed" for r in results()), 60,
                   "the gateway naming the lost part")
        needed = next(r for r in results() if r.result.get("sync") == "needed")
        assert needed.result["credentials_version"] == 0  # nothing applied yet
        assert needed.result["transfer"]["missing"] == [1]

        agent.stop()  # a restart mid-transfer: the three staged parts stay on disk
        send(payload=part(1))  # the resend waits in the persistent session
        agent = agents(config)
        wait_until(lambda: any(r.result == {"credentials_version": 3} for r in results()), 60,
                   "the snapshot applied after the restart")
        assert "credentials=10000" in agent.log() and "parts=4" in agent.log()
        wait_until(lambda: "event=osdp_reader_online" in agent.log(), 30, "the reader online")
        since = time.monotonic()
        sim.present_card(1, 10**7 + 9_999)
        assert sim.wait_for_command(lambda c: c.name == "output", 15, since) is not None
