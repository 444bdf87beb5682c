"""Modbus discovery against the pymodbus simulator on a pty: several sensors on one line, one
silent, one answering damaged frames; profiles proposed only from identifying registers."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from discover_support import IDENTIFIED_PROFILE, modbus_line, profiles_with_identity

from gridsense_edge.discover.modbus_scan import ScanLimits, parse_ids, scan_modbus
from gridsense_edge.drivers.modbus.profiles import SerialDefaults, load_all_modbus_profiles
from gridsense_edge.simulator import ModbusSensorSimulator


@pytest.fixture
def line(tmp_path: Path) -> Iterator[tuple[ModbusSensorSimulator, Path]]:
    profiles = profiles_with_identity(tmp_path / "fw")
    sim = modbus_line(tmp_path / "ttyRS485", profiles)
    try:
        yield sim, profiles
    finally:
        sim.stop()


def test_scan_finds_each_answering_slave_and_names_what_it_can(
        line: tuple[ModbusSensorSimulator, Path]) -> None:
    sim, profiles = line
    limits = ScanLimits(ids=tuple(range(1, 11)), per_id_s=0.2, overall_s=30)
    lines: list[str] = []
    scan = asyncio.run(scan_modbus(str(sim.link), SerialDefaults(),
                                   load_all_modbus_profiles(profiles), limits, lines.append))

    assert scan.error is None and scan.complete
    assert scan.scanned == list(range(1, 11))
    found = {f.slave: f for f in scan.found}
    assert sorted(found) == [1, 2, 4]  # 3 is silent; 5..10 are not on the line
    assert found[2].profile == IDENTIFIED_PROFILE  # its model code matched
    # No identifying register: unknown, with the profiles whose readings fit as hints.
    assert found[1].profile is None
    assert "xy-md02" in found[1].candidates and "pt100-transmitter" not in found[1].candidates
    assert found[1].to_json()["note"].startswith("未知")
    assert found[4].answer == "garbled" and "CRC" in found[4].detail
    assert any("slave 2" in line and IDENTIFIED_PROFILE in line for line in lines)
    # Bounded: every silent id costs its timeout at most once.
    assert scan.elapsed_s < limits.overall_s


def test_scan_stops_at_its_time_bound(line: tuple[ModbusSensorSimulator, Path]) -> None:
    sim, profiles = line
    limits = ScanLimits(ids=tuple(range(1, 248)), per_id_s=0.2, overall_s=2.0)
    scan = asyncio.run(scan_modbus(str(sim.link), SerialDefaults(),
                                   load_all_modbus_profiles(profiles), limits))
    assert not scan.complete
    assert 1 in scan.scanned and len(scan.scanned) < 247
    assert scan.to_json()["scanned_ids"].startswith("1-")


def test_a_missing_port_is_an_error_not_an_empty_line(tmp_path: Path) -> None:
    scan = asyncio.run(scan_modbus(str(tmp_path / "ttyNONE"), SerialDefaults(), [],
                                   ScanLimits(ids=(1, 2), per_id_s=0.1, overall_s=5)))
    assert scan.error is not None and "ttyNONE" in scan.error
    assert not scan.complete and scan.found == []


def test_id_lists() -> None:
    assert parse_ids("1-3,7,2", 1, 247) == (1, 2, 3, 7)
    with pytest.raises(ValueError, match=r"1\.\.247"):
        parse_ids("0-5", 1, 247)
