"""Camera config is validated with the rest of the gateway file: errors name file, line, key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gridsense_edge.config import ConfigError, load_config

GOOD_ZONE = "[[160, 0], [320, 0], [320, 240], [160, 240]]"


def _write(tmp: Path, model: Path, zone: str = GOOD_ZONE, rule: str = "{type: intrusion, "
           "zone: restricted}") -> Path:
    config = tmp / "gateway.yaml"
    config.write_text(f"""gateway: {{id: gw-1, state_dir: {tmp / "state"}}}
devices:
  - type: camera
    point: cam-1
    source: lobby.avi
    resolution: [320, 240]
    detector: {{model: {model}}}
    zones:
      - {{name: restricted, polygon: {zone}}}
    rules:
      - {rule}
""")
    return config


def test_a_good_camera_config_loads(tmp_path: Path, models: dict[str, Path]) -> None:
    config = load_config(_write(tmp_path, models["yolox"]))
    camera = config.devices[0]
    assert camera.source == str(tmp_path / "lobby.avi")  # relative to the config file
    assert camera.rules[0].zone == "restricted"


@pytest.mark.parametrize(("zone", "rule", "line", "path", "problem"), [
    ("[[160, 0], [400, 0], [320, 240]]", "{type: intrusion, zone: restricted}", 9,
     "devices[0].zones[0].polygon", "point (400, 0) lies outside the 320x240 frame"),
    (GOOD_ZONE, "{type: loitering, zone: lobby}", 11, "devices[0].rules[0].zone",
     "unknown zone 'lobby'"),
    (GOOD_ZONE, "{type: intrusion, zone: restricted, labels: [dog]}", 11,
     "devices[0].rules[0].labels", "label 'dog' is not one the model detects"),
    (GOOD_ZONE, "{type: tailgating}", 11, "devices[0].rules[0]", "not a known camera rule"),
    ("[[0, 0], [10, 0]]", "{type: intrusion}", 9, "devices[0].zones[0].polygon",
     "at least 3 items"),
])
def test_config_errors_name_the_key_and_line(
    tmp_path: Path, models: dict[str, Path], zone: str, rule: str, line: int, path: str,
    problem: str,
) -> None:
    config = _write(tmp_path, models["yolo"], zone, rule)
    with pytest.raises(ConfigError) as error:
        load_config(config)
    message = str(error.value)
    assert f"gateway.yaml:{line}: {path}: " in message, message
    assert problem in message, message


def test_a_missing_model_or_card_is_a_config_error(tmp_path: Path, models: dict[str, Path]
                                                   ) -> None:
    with pytest.raises(ConfigError, match=r"gateway.yaml:7: devices\[0\].detector.model: "
                                          r"model file .*nowhere.onnx not found"):
        load_config(_write(tmp_path, tmp_path / "nowhere.onnx"))
    lonely = tmp_path / "lonely.onnx"
    lonely.write_bytes(models["yolo"].read_bytes())
    with pytest.raises(ConfigError, match=r"model card .*lonely.card.yaml not found"):
        load_config(_write(tmp_path, lonely))


def test_a_gateway_without_cameras_never_imports_opencv_or_onnxruntime() -> None:
    code = ("import sys, gridsense_edge.agent, gridsense_edge.config; "
            "print(sorted(m for m in ('cv2', 'onnxruntime', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
