"""What a pushed configuration changes decides what restarts: only the driver types whose
devices (or shared buses) changed, the rules when they changed, the uplink when mqtt changed,
and a probe first when the broker itself moves. Built from the real config models."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from gridsense_edge.reconfig.applier import validate_document
from gridsense_edge.reconfig.plan import forbidden_change, plan_change
from gridsense_protocol.yamlconfig import ConfigError


def document(tmp_path: Path) -> dict[str, Any]:
    return {
        "gateway": {"id": "gw-01", "state_dir": str(tmp_path / "state")},
        "buses": [{"id": "rs485-0", "port": "/dev/ttyUSB0"}],
        "devices": [
            {"type": "modbus_temperature", "point": "gw-01.boiler", "bus": "rs485-0",
             "slave": 1, "profile": "xy-md02"},
            {"type": "onewire_temperature", "point": "gw-01.pipe",
             "sensor": "28-000005e2fdc3"},
        ],
        "rules": [{"type": "over_temperature", "points": ["*"], "threshold": 60}],
    }


def test_only_what_changed_restarts(tmp_path: Path) -> None:
    base = document(tmp_path)
    old = validate_document(base, "old", tmp_path)
    same = plan_change(old, validate_document(copy.deepcopy(base), "same", tmp_path))
    assert same.empty

    raised = copy.deepcopy(base)
    raised["rules"][0]["threshold"] = 70
    plan = plan_change(old, validate_document(raised, "raised", tmp_path))
    assert (plan.driver_types, plan.rules, plan.uplink) == (frozenset(), True, False)

    moved = copy.deepcopy(base)
    moved["devices"][0]["slave"] = 2
    plan = plan_change(old, validate_document(moved, "moved", tmp_path))
    assert plan.driver_types == {"modbus_temperature"} and not plan.rules

    bus = copy.deepcopy(base)
    bus["buses"][0]["port"] = "/dev/ttyUSB1"
    plan = plan_change(old, validate_document(bus, "bus", tmp_path))
    assert plan.driver_types == {"modbus_temperature", "onewire_temperature"}

    keepalive = copy.deepcopy(base)
    keepalive["mqtt"] = {"keepalive_s": 15}
    plan = plan_change(old, validate_document(keepalive, "keepalive", tmp_path))
    assert plan.uplink and not plan.broker_moves

    broker = copy.deepcopy(base)
    broker["mqtt"] = {"host": "broker.ly.local", "port": 8883}
    plan = plan_change(old, validate_document(broker, "broker", tmp_path))
    assert plan.uplink and plan.broker_moves


def test_identity_and_state_folder_change_only_on_site(tmp_path: Path) -> None:
    base = document(tmp_path)
    old = validate_document(base, "old", tmp_path)
    other = copy.deepcopy(base)
    other["gateway"]["id"] = "gw-02"
    assert "gw-02" in str(forbidden_change(old, validate_document(other, "id", tmp_path)))
    elsewhere = copy.deepcopy(base)
    elsewhere["gateway"]["state_dir"] = str(tmp_path / "elsewhere")
    assert "state_dir" in str(forbidden_change(old, validate_document(elsewhere, "dir",
                                                                      tmp_path)))


def test_the_gateway_names_the_key_of_an_invalid_document(tmp_path: Path) -> None:
    bad = document(tmp_path)
    bad["rules"][0]["threshold"] = "hot"
    with pytest.raises(ConfigError, match=r"rules\[0\]\.threshold|rules.0.threshold"):
        validate_document(bad, "remote config v3", tmp_path)
