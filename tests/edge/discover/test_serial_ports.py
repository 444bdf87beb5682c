"""Serial port names: stable /dev/serial/by-id names found for a device, and who else has a
port open."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

from gridsense_devtools.processes import wait_until
from gridsense_edge.discover.ports import list_serial_ports, openers, stable_name_of, stable_names


def test_a_port_is_named_by_its_by_id_link(tmp_path: Path) -> None:
    master, slave = pty.openpty()
    try:
        device = os.ttyname(slave)
        by_id = tmp_path / "by-id"
        by_id.mkdir()
        (by_id / "usb-FTDI_FT232R_USB_UART_A50285BI-if00-port0").symlink_to(device)
        assert stable_names(by_id) == {
            os.path.realpath(device): str(by_id / "usb-FTDI_FT232R_USB_UART_A50285BI-if00-port0")}
        assert stable_name_of(device, by_id).endswith("A50285BI-if00-port0")
        assert stable_name_of("/dev/ttyNONE", by_id) == "/dev/ttyNONE"  # no link: kept as is
        assert stable_name_of("rfc2217://10.0.0.5:4001", by_id) == "rfc2217://10.0.0.5:4001"
        assert stable_names(tmp_path / "missing") == {}
        # The machine's own list (may be empty in a container) has the same shape.
        for port in list_serial_ports(by_id):
            assert port.name in (port.stable, port.device)
    finally:
        os.close(master)
        os.close(slave)


def test_another_process_holding_the_port_is_named(tmp_path: Path) -> None:
    master, slave = pty.openpty()
    device = os.ttyname(slave)
    os.close(slave)
    holder = subprocess.Popen([sys.executable, "-c",
                               f"import time; f = open({device!r}, 'rb'); print('open', "
                               "flush=True); time.sleep(60)"], stdout=subprocess.PIPE)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"open\n"
        found = wait_until(lambda: openers(device), 10, "the holder seen in /proc")
        assert [pid for pid, _ in found] == [holder.pid]
        assert "time.sleep" in found[0][1]
    finally:
        holder.kill()
        holder.wait()
        os.close(master)
    assert openers(device) == []
