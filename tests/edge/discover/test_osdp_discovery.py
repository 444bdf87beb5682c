"""OSDP discovery against libosdp PeripheralDevices on a pty: two readers answer, one is silent,
and line noise arrives during the scan; identity and capabilities are read without keys."""

from __future__ import annotations

import threading
from pathlib import Path

from gridsense_edge.discover.osdp_scan import scan_osdp
from gridsense_edge.simulator.osdp import (
    SIM_MODEL,
    SIM_VENDOR_CODE,
    OsdpReaderSimulator,
    SimulatedReader,
)

KEYS = {1: bytes(range(16)), 2: bytes(range(16, 32)), 5: bytes(range(32, 48))}


def test_scan_reads_identity_and_capabilities_of_each_reader(tmp_path: Path) -> None:
    link = tmp_path / "ttyOSDP"
    sim = OsdpReaderSimulator(link, [SimulatedReader(a, k) for a, k in KEYS.items()], seed=3)
    sim.start()
    noise_stop = threading.Event()

    def noise() -> None:  # a chattering device on the line: bytes that are no OSDP frame
        while not noise_stop.wait(0.3):
            sim.send_garbage(24)

    noisy = threading.Thread(target=noise, daemon=True)
    try:
        sim.set_silent(5, True)  # unplugged: neither hears nor answers
        noisy.start()
        lines: list[str] = []
        scan = scan_osdp(str(link), tuple(range(0, 8)), overall_s=30, progress=lines.append)
    finally:
        noise_stop.set()
        noisy.join()
        sim.stop()

    assert scan.error is None and scan.complete
    assert [r.address for r in scan.found] == [1, 2]
    first = scan.found[0]
    assert first.vendor_code == SIM_VENDOR_CODE and first.model == SIM_MODEL
    assert first.serial_number == 0x47530001 and scan.found[1].serial_number == 0x47530002
    assert first.firmware == "1.2.3"
    # What the simulated readers declare (simulator/osdp.py PDCapabilities).
    for name in ("output_control", "contact_status_monitoring", "led_control",
                 "audible_output", "card_data_format"):
        assert first.capabilities[name]["level"] == 1, name
    assert first.to_json()["vendor_code"] == "0A1B2C"
    assert any("reader at address 2" in line for line in lines)


def test_scan_stops_at_its_time_bound(tmp_path: Path) -> None:
    link = tmp_path / "ttyOSDP"
    with OsdpReaderSimulator(link, [SimulatedReader(1, KEYS[1])], seed=3):
        scan = scan_osdp(str(link), tuple(range(0, 127)), overall_s=12)
    assert not scan.complete  # 127 addresses do not fit 12 s; the first batch does
    assert [r.address for r in scan.found] == [1]
    assert scan.elapsed_s < 12


def test_a_missing_port_is_an_error(tmp_path: Path) -> None:
    scan = scan_osdp(str(tmp_path / "ttyNONE"), (1,), overall_s=5)
    assert scan.error is not None and "ttyNONE" in scan.error and not scan.complete
