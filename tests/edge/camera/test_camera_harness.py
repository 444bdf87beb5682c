"""The camera rules harness (models/detectors/harness.py) on a small run: each rule through the
real pipeline on rendered scenes of its event and of a near miss, judged against the ground
truth's own moment."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

pytest.importorskip("onnxruntime")
FOLDER = Path(__file__).resolve().parents[3] / "models" / "detectors"


def _load(name: str):  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(name, FOLDER / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = sys.modules[name] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


harness = _load("harness")
scenes = sys.modules["scenes"]


def test_every_rule_catches_its_event_and_keeps_quiet_on_its_near_miss() -> None:
    result = harness.evaluate(count=1, seed=5)
    rules = result["rules"]
    assert set(rules) == set(scenes.RULES)
    for rule, r in rules.items():
        assert r["caught"] == 1, (rule, r)
        assert 0 <= r["median_delay_s"] <= harness.HORIZON_S, (rule, r)
        assert r["false_incidents"] == {"near_miss": 0, "event_scenes": 0}, (rule, r)
    table = harness.markdown(result)
    assert "| fire_lane_blocked (for_s 8.0) | 1/1 (100%) |" in table


def test_the_oracle_is_the_ground_truths_moment_and_raises_are_judged_against_it() -> None:
    [event, near] = scenes.scenes("intrusion", 1, seed=5)
    truth = scenes.oracle(event)
    assert truth is not None and scenes.oracle(near) is None
    person = event.target[0]
    before, at = person.box_at(truth - 0.1), person.box_at(truth)
    assert (before[0] + before[2]) / 2 < scenes.ZONE_X <= (at[0] + at[2]) / 2  # feet cross in
    assert harness.judge(event, [truth + 0.2]) == (0.2, 0)
    assert harness.judge(event, [truth - 2.0, truth + 0.2]) == (0.2, 1)  # too early: false
    assert harness.judge(event, [truth + harness.HORIZON_S + 1]) == (None, 1)  # too late: missed
    assert harness.judge(near, [1.0, 2.0]) == (None, 2)
