"""The access detectors' harness (models/access_anomaly/harness.py) on a small run: each detector
as the gateway runs it, judged on scripted abuse and on a normal week."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

pytest.importorskip("onnxruntime")
HARNESS = Path(__file__).resolve().parents[3] / "models" / "access_anomaly" / "harness.py"
_spec = importlib.util.spec_from_file_location("access_anomaly_harness", HARNESS)
assert _spec is not None and _spec.loader is not None
harness = sys.modules[_spec.name] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(harness)
FAMILIES, evaluate, markdown = harness.FAMILIES, harness.evaluate, harness.markdown


def test_each_abuse_is_caught_by_the_detector_made_for_it_and_the_gap_is_shown() -> None:
    result = evaluate(episodes=12, seed=3)
    families = result["families"]
    assert set(families) == set(FAMILIES)
    assert families["night_probing"]["repeated_denied"]["recall"] == 1.0
    assert families["night_valid_card"]["access_anomaly"]["recall"] >= 0.9
    assert families["passback_burst"]["card_passback"]["recall"] == 1.0
    # No gateway sees two buildings' doors: a cloned card at both is not caught by the rules,
    # the server's correlation of every gateway's grants catches it at the second door.
    assert families["two_doors"]["card_passback"]["recall"] == 0.0
    assert families["two_doors"]["repeated_denied"]["recall"] == 0.0
    assert families["two_doors"]["card_two_places"]["recall"] == 1.0
    assert 20 <= families["two_doors"]["card_two_places"]["median_delay_s"] <= 50
    assert families["passback_burst"]["card_two_places"]["recall"] == 0.0  # one door only
    # The rules stay silent on a normal week; the model's hour-of-day false alarms are counted.
    false_alarms = result["false_alarms"]
    assert false_alarms["card_passback"]["count"] == false_alarms["repeated_denied"]["count"] == 0
    assert false_alarms["card_two_places"]["count"] == 0
    assert false_alarms["access_anomaly"]["count"] > 0
    table = markdown(result)
    assert "| passback_burst |" in table and "false alarms per door-week" in table
