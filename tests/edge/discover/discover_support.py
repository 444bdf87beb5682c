"""Shared set-up of the discovery tests: a profile folder with an identifiable model, and the
simulated lines (several devices each, one silent, one answering garbage).

(Named ``discover_support`` because test folders share one import path.)
"""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from gridsense_edge.configtypes import default_profiles_dir
from gridsense_edge.simulator import ModbusSensorSimulator, SimulatedSensor

IDENTIFIED_PROFILE = "acme-th20"
MODEL_CODE = 0x5A20


def profiles_with_identity(folder: Path) -> Path:
    """The shipped profiles (no identifying registers: cheap sensors have none) plus one model
    that keeps a model code in holding register 0x0100."""
    shutil.copytree(default_profiles_dir().parent, folder / "devices")  # OSDP readers' too
    target = folder / "devices" / "modbus"
    shipped = yaml.safe_load((target / "xy-md02.yaml").read_text())
    shipped.update(id=IDENTIFIED_PROFILE, name="ACME TH20 (model code in holding 0x0100)",
                   identify=[{"table": "holding", "address": 0x0100, "equals": MODEL_CODE}])
    (target / f"{IDENTIFIED_PROFILE}.yaml").write_text(yaml.safe_dump(shipped))
    return target


def modbus_line(link: Path, profiles: Path) -> ModbusSensorSimulator:
    """Slave 1: an unidentifiable XY-MD02; 2: the identifiable model; 3: a PT100 transmitter
    gone silent; 4: an XY-MD02 whose answers arrive damaged."""
    sensors = [
        SimulatedSensor(1, "xy-md02", {"temperature": 21.5, "humidity": 40.0}),
        SimulatedSensor(2, IDENTIFIED_PROFILE, {"temperature": 23.0, "humidity": 50.0}),
        SimulatedSensor(3, "pt100-transmitter", {"temperature": 80.0}),
        SimulatedSensor(4, "xy-md02", {"temperature": 19.0, "humidity": 60.0}),
    ]
    sim = ModbusSensorSimulator(link, sensors, profiles_dir=profiles, seed=5)
    sim.start()
    sim.set_fault(3, "silent")
    sim.set_fault(4, "bad_crc")
    return sim
