"""The demo: a held-out room's fire goes through the gateway's rules built from their config,
and the model's incident comes before the 60 °C threshold's."""

from __future__ import annotations

import json
import subprocess

from thermal_support import MODEL

DEMO = MODEL.parents[2] / "scripts" / "demo-thermal"


def test_the_model_raises_before_the_threshold_would() -> None:
    done = subprocess.run([str(DEMO), "--json"], capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    first = result["first_alarm_min_after_onset"]
    assert first["temperature_anomaly"] < first["over_temperature"]
    assert result["model_health"]["state"] == "ok"
    raised = [e for e in result["timeline"] if e["type"] == "temperature_anomaly"]
    assert raised[0]["reading_c"] < 60.0 and "温度异常" in raised[0]["message"]


def test_a_family_that_does_not_happen_in_the_room_is_refused() -> None:
    done = subprocess.run([str(DEMO), "--room", "vaccine_fridge", "--family", "flaming_fire"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2 and "vaccine_fridge" in done.stderr
