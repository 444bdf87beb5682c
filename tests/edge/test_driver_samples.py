"""Every driver folder's sample.yaml is a gateway-config fragment the real loader accepts, and
a Modbus-only gateway does not import the optional OSDP or camera libraries."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from gridsense_devtools.detectors import synthetic
from gridsense_edge import drivers
from gridsense_edge.config import load_config

DRIVERS_DIR = Path(drivers.__file__).parent
FOLDERS = sorted(p.parent for p in DRIVERS_DIR.glob("*/__init__.py"))


def _supply_files(fragment: dict[str, object], folder: Path) -> None:
    """Create the files the sample names (a reader key, a detector model), as an operator would."""
    for device in fragment.get("devices", []):  # type: ignore[union-attr]
        if "key_file" in device:
            key = folder / device["key_file"]
            key.parent.mkdir(parents=True, exist_ok=True)
            key.write_text(bytes(range(16)).hex())
            os.chmod(key, 0o600)
        model = device.get("detector", {}).get("model")
        if model is not None:
            synthetic.write(folder / model, "yolo")


def test_every_driver_folder_has_a_readme_and_a_sample() -> None:
    assert {p.name for p in FOLDERS} >= {"camera", "modbus", "osdp"}
    for folder in FOLDERS:
        assert (folder / "README.md").is_file(), folder
        assert (folder / "sample.yaml").is_file(), folder


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: p.name)
def test_the_sample_loads_through_the_gateway_config(folder: Path, tmp_path: Path) -> None:
    sample = (folder / "sample.yaml").read_text()
    fragment = yaml.safe_load(sample)
    _supply_files(fragment, tmp_path)
    config_file = tmp_path / "gateway.yaml"
    config_file.write_text(f"gateway: {{id: gw-sample, state_dir: ./state}}\n{sample}")
    config = load_config(config_file)
    assert len(config.devices) == len(fragment["devices"])
    assert {d.type for d in config.devices} <= set(drivers.DRIVERS.types())


def test_a_modbus_gateway_imports_neither_osdp_nor_camera_libraries(tmp_path: Path) -> None:
    sample = (DRIVERS_DIR / "modbus" / "sample.yaml").read_text()
    config_file = tmp_path / "gateway.yaml"
    config_file.write_text(f"gateway: {{id: gw-sample, state_dir: ./state}}\n{sample}")
    probe = ("import sys; from gridsense_edge.agent import Agent; "
             "from gridsense_edge.config import load_config; "
             f"Agent(load_config({str(config_file)!r})); "
             "print(sorted({m.split('.')[0] for m in sys.modules} & "
             "{'osdp', 'cv2', 'onnxruntime'}))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, timeout=120)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
