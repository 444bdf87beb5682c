"""The serial ports of this machine, each with its stable /dev/serial/by-id name."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

BY_ID = Path("/dev/serial/by-id")


@dataclass(frozen=True, slots=True)
class SerialPort:
    device: str  # /dev/ttyUSB0: changes with the plugging order
    stable: str | None  # /dev/serial/by-id/usb-FTDI_...-if00-port0: survives a reboot
    description: str
    hwid: str

    @property
    def name(self) -> str:
        """What a config should say."""
        return self.stable or self.device

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def stable_names(folder: Path = BY_ID) -> dict[str, str]:
    """Real device path -> its by-id link (udev makes these for USB adapters)."""
    if not folder.is_dir():
        return {}
    names = {}
    for link in sorted(folder.iterdir()):
        names.setdefault(os.path.realpath(link), str(link))
    return names


def list_serial_ports(by_id: Path = BY_ID) -> list[SerialPort]:
    from serial.tools import list_ports

    stable = stable_names(by_id)
    ports = []
    for info in sorted(list_ports.comports(), key=lambda p: p.device):
        ports.append(SerialPort(info.device, stable.get(os.path.realpath(info.device)),
                                info.description or "", info.hwid or ""))
    return ports


def stable_name_of(port: str, by_id: Path = BY_ID) -> str:
    """The by-id name of ``port`` when it has one, else ``port`` itself."""
    if "://" in port or port.startswith(str(by_id)):
        return port
    return stable_names(by_id).get(os.path.realpath(port), port)


def openers(port: str, proc: Path = Path("/proc")) -> list[tuple[int, str]]:
    """Other processes holding ``port`` open, as (pid, command line): two programs on one
    RS-485 line garble each other's frames. Processes of other users are seen as root only."""
    if "://" in port:
        return []
    target = os.path.realpath(port)
    found = []
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            fds = list((entry / "fd").iterdir())
            holds = any(os.path.realpath(fd) == target for fd in fds)
            if holds:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").strip()
                found.append((int(entry.name), cmdline.decode(errors="replace")[:120]))
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return sorted(found)
