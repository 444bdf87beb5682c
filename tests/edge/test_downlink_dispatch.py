"""The agent offers each server message to the handlers its drivers registered: a gateway
without readers answers ``access_sync`` as an unknown command and stays silent on the access
config; a gateway with a reader has the OSDP credential sync answer it."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

from gridsense_edge.agent import Agent
from gridsense_edge.config import load_config
from gridsense_edge.transport.outbox import SqliteOutbox
from gridsense_protocol import Command, ConfigUpdate, Kind

NOW = datetime(2026, 11, 25, tzinfo=UTC)
SECRET = bytes(range(7, 39))


def _agent(tmp_path: Path, devices: str) -> tuple[Agent, SqliteOutbox]:
    config_file = tmp_path / "gw.yaml"
    config_file.write_text(f"gateway: {{id: gw-dd, state_dir: ./state}}\ndevices: {devices}\n")
    agent = Agent(load_config(config_file))
    outbox = SqliteOutbox(tmp_path / "outbox")
    agent._build(outbox)
    return agent, outbox


def _results(outbox: SqliteOutbox) -> list[dict[str, object]]:
    outbox.flush()
    return [json.loads(m.payload) for m in outbox.claim(100) if m.kind == Kind.CMD_RESULT.value]


def _sync(seq: int) -> Command:
    return Command(gateway="gw-dd", seq=seq, ts=NOW, name="access_sync",
                   args={"mode": "snapshot", "version": 4, "secret": SECRET.hex(),
                         "credentials": []})


ACCESS_CONFIG = ConfigUpdate(gateway="gw-dd", seq=2, ts=NOW, version=1,
                             body={"access": {"community": "ly", "credentials_version": 4}})


def test_a_gateway_without_readers_does_not_know_access_sync(tmp_path: Path) -> None:
    agent, outbox = _agent(tmp_path, "[]")
    agent._on_downlink(_sync(1))
    agent._on_downlink(ACCESS_CONFIG)
    [result] = _results(outbox)
    assert result["ok"] is False and "unknown command 'access_sync'" in str(result["error"])
    outbox.close()


def test_the_reader_driver_answers_the_credential_sync(tmp_path: Path) -> None:
    key = tmp_path / "reader.key"
    key.write_text(bytes(range(16)).hex())
    os.chmod(key, 0o600)
    agent, outbox = _agent(tmp_path, f"[{{type: osdp_reader, point: gw-dd.door, "
                                     f"port: /dev/null, key_file: {key}}}]")
    agent._on_downlink(ACCESS_CONFIG)
    agent._on_downlink(_sync(1))
    behind, applied = _results(outbox)
    assert behind["result"] == {"credentials_version": 0, "sync": "needed"}
    assert applied["ok"] is True and applied["result"] == {"credentials_version": 4}
    outbox.close()
