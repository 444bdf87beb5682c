"""The ``discover`` subcommand: scan what is asked, show progress, print a draft config."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from .progress import Progress

if TYPE_CHECKING:  # the scanners load pymodbus, libosdp and OpenCV: only when discover runs
    from .cameras import CameraProbe
    from .modbus_scan import ModbusScan
    from .osdp_scan import OsdpScan
    from .ports import SerialPort

T = TypeVar("T")
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    discover = subparsers.add_parser(
        "discover", help="find serial ports, Modbus sensors, OSDP readers and cameras; "
        "draft a gateway config",
        description="设备发现：列出串口，扫描 RS-485 上的 Modbus 从站与 OSDP 读卡器，"
        "探测摄像头并各存一帧，输出网关配置草稿 / List serial ports, scan RS-485 lines "
        "for Modbus slaves and OSDP readers, probe cameras and save a frame from each, "
        "and print a draft gateway config. A running agent (--config) lends each "
        "scanned port and takes it back after. Progress goes to stderr. Exit 1 when a "
        "scan could not run or the draft is invalid.")
    discover.add_argument("--config", type=Path,
                          help="the running agent's gateway config: its ports are borrowed "
                          "through its state folder, its gateway and mqtt sections go into "
                          "the draft")
    discover.add_argument("--gateway-id", default="gw-new",
                          help="gateway id for the draft when no --config is given")
    discover.add_argument("--profiles-dir", type=Path,
                          help="Modbus device profiles (default: the --config's, else "
                          "firmware_configs/devices/modbus)")
    discover.add_argument("--modbus", action="append", default=[], metavar="PORT",
                          help="scan this serial port for Modbus RTU slaves (repeatable)")
    discover.add_argument("--ids", default="1-247", help="slave ids to try (default 1-247)")
    discover.add_argument("--baudrate", type=int, default=9600,
                          choices=[1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200])
    discover.add_argument("--parity", default="N", choices=["N", "E", "O"])
    discover.add_argument("--stopbits", type=int, default=1, choices=[1, 2])
    discover.add_argument("--id-timeout", type=float, default=0.15, metavar="S",
                          help="wait per slave id (default 0.15 s)")
    discover.add_argument("--osdp", action="append", default=[], metavar="PORT",
                          help="scan this serial port for OSDP readers (repeatable)")
    discover.add_argument("--addresses", default="0-126",
                          help="OSDP addresses to try (default 0-126)")
    discover.add_argument("--osdp-baudrate", type=int, default=9600,
                          choices=[9600, 19200, 38400, 57600, 115200, 230400])
    discover.add_argument("--camera", action="append", default=[], metavar="SOURCE",
                          help="probe a camera: rtsp://..., http://... (MJPEG) or a USB index "
                          "(repeatable)")
    discover.add_argument("--max-time", type=float, default=60.0, metavar="S",
                          help="bound on each line's scan (default 60 s)")
    discover.add_argument("--out", type=Path, default=Path("discovery"),
                          help="folder for the draft and the camera frames (default ./discovery)")
    discover.add_argument("--json", action="store_true", help="print the result as JSON")
    discover.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..config import ConfigError, load_config
    from ..drivers.modbus.profiles import SerialDefaults, load_all_modbus_profiles
    from ..portlease import PortLeaseError
    from .cameras import masked, parse_source, probe_camera
    from .draft import build_draft, write_and_check
    from .modbus_scan import ScanLimits, parse_ids, scan_modbus
    from .osdp_scan import scan_osdp
    from .ports import list_serial_ports
    from .progress import printer

    try:
        ids = parse_ids(args.ids, 1, 247)
        addresses = parse_ids(args.addresses, 0, 126)
        if not 0.01 <= args.id_timeout <= 5 or not 1 <= args.max_time <= 3600:
            raise ValueError("--id-timeout must be 0.01..5 s and --max-time 1..3600 s")
        base = load_config(args.config) if args.config is not None else None
    except (ValueError, ConfigError) as exc:
        print(f"discover: {exc}", file=sys.stderr)
        return EXIT_USAGE
    # pymodbus warns of every silent id and dumps frames: the scan reports those itself.
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    progress = printer()
    state_dir = base.gateway.state_dir if base is not None else None
    profiles_dir = args.profiles_dir or (base.profiles_folder if base is not None else None)
    try:
        profiles = load_all_modbus_profiles(profiles_dir)
    except (OSError, ValueError) as exc:  # a profile that does not validate names its file
        print(f"discover: {exc}", file=sys.stderr)
        return EXIT_USAGE
    serial = SerialDefaults(baudrate=args.baudrate, parity=args.parity, stopbits=args.stopbits)
    limits = ScanLimits(ids=ids, per_id_s=args.id_timeout, overall_s=args.max_time)

    ports = list_serial_ports()
    progress(f"{len(ports)} serial ports")
    try:
        modbus = [_borrowed(state_dir, port, progress, lambda name: asyncio.run(
            scan_modbus(name, serial, profiles, limits, progress))) for port in args.modbus]
        osdp = [_borrowed(state_dir, port, progress, lambda name: scan_osdp(
            name, addresses, args.osdp_baudrate, args.max_time, progress))
            for port in args.osdp]
    except PortLeaseError as exc:
        print(f"discover: {exc}", file=sys.stderr)
        return EXIT_FAILED
    failures: list[str] = []
    failures += [s.error for s in [*modbus, *osdp] if s.error]
    cameras = [probe_camera(parse_source(source), args.out, f"camera-{n}", progress=progress)
               for n, source in enumerate(args.camera)]
    failures += [f"camera {masked(c.source)}: {c.detail}" for c in cameras if not c.ok]
    draft = build_draft(base, args.gateway_id, modbus, osdp, cameras, profiles_dir)
    path, problem = write_and_check(draft, args.out)
    if problem is not None:
        failures.append(f"the draft does not pass check-config: {problem}")
    progress(f"draft written to {path}")
    if args.json:
        print(json.dumps({
            "ok": not failures, "failures": failures,
            "serial_ports": [p.to_json() for p in ports],
            "modbus": [s.to_json() for s in modbus], "osdp": [s.to_json() for s in osdp],
            "cameras": [c.to_json() for c in cameras],
            "draft": {"path": str(path), "valid": problem is None, "yaml": draft.to_yaml(),
                      "pending": [{"why": why, "entry": entry,
                                   "candidates": draft.choices.get(entry.get("point", ""))}
                                  for why, entry in draft.pending]},
            # The draft as data: what the installer page reads when this output is pasted.
            "config": draft.config,
        }, ensure_ascii=False))
    else:
        _summary(ports, modbus, osdp, cameras)
        print(draft.to_yaml())
        for failure in failures:
            print(f"discover: {failure}", file=sys.stderr)
    return EXIT_FAILED if failures else EXIT_OK


def _borrowed(state_dir: Path | None, port: str, progress: Progress,
              scan: Callable[[str], T]) -> T:
    """Run ``scan`` on the port's stable name while the agent at ``state_dir`` keeps off it."""
    from ..portlease import borrow_port
    from .ports import openers, stable_name_of

    with borrow_port(state_dir, port) as holders:
        if holders:
            progress(f"{port}: the running agent lent it ({', '.join(holders)})")
        for pid, cmdline in openers(port):
            progress(f"{port}: 注意：另一进程正在使用 / warning: also open in pid {pid} "
                     f"({cmdline}); a running agent lends it only when given --config")
        return scan(stable_name_of(port))


def _summary(ports: list[SerialPort], modbus: list[ModbusScan], osdp: list[OsdpScan],
             cameras: list[CameraProbe]) -> None:
    from .cameras import masked

    print("# 串口 / serial ports")
    for port in ports:
        print(f"#   {port.name}  ({port.device}, {port.description})")
    for scan in modbus:
        state = "" if scan.complete else "  (未扫完 / incomplete)"
        print(f"# Modbus {scan.port}: {len(scan.found)} found in {scan.elapsed_s:.1f} s{state}")
        for slave in scan.found:
            print(f"#   slave {slave.slave:3}  {slave.answer:9}  "
                  f"{slave.profile or '未知 unknown'}  {slave.detail}")
    for scan in osdp:
        print(f"# OSDP {scan.port}: {len(scan.found)} readers in {scan.elapsed_s:.1f} s")
        for reader in scan.found:
            print(f"#   address {reader.address:3}  vendor {reader.vendor_code:06X}  model "
                  f"{reader.model}  serial {reader.serial_number:08X}  fw {reader.firmware}  "
                  f"secure channel {'yes' if reader.secure_channel else 'no'}")
    for camera in cameras:
        print(f"# camera {masked(camera.source)}: {camera.detail}"
              + (f" {camera.width}x{camera.height} -> {camera.frame}" if camera.ok else ""))
