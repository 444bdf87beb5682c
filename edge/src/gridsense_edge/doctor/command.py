"""The ``doctor`` subcommand: run every check, print a table (or JSON), exit 1 on a fault."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .findings import Finding, Status

EXIT_OK, EXIT_FAULT = 0, 1


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    doctor = subparsers.add_parser(
        "doctor", help="check this gateway's set-up and say how to fix each fault",
        description="自检：配置、时钟、磁盘、串口权限、代理连接（认证与 TLS）、设备应答、outbox / "
        "Check the config, clock, disk, serial ports, the broker (a real login), each "
        "device's answer and the outbox. Exit 1 when anything is at fault.")
    doctor.add_argument("--config", type=Path, required=True, help="gateway config YAML")
    doctor.add_argument("--server", help="server URL: its Date header sets the clock check")
    doctor.add_argument("--json", action="store_true", help="print the findings as JSON")
    doctor.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from . import checks  # here: pymodbus and paho load only when doctor runs

    first, config = checks.check_config(args.config)
    findings: list[Finding] = [first, checks.check_clock(args.server)]
    if config is not None:
        findings.append(checks.check_disk(config))
        findings += checks.check_pass_clock(config)
        findings += checks.check_serial(config)
        findings.append(checks.check_broker(config))
        findings += checks.check_devices(config)
        findings.append(checks.check_outbox(config))
    faults = [f for f in findings if f.status is Status.FAULT]
    if args.json:
        print(json.dumps({"ok": not faults, "findings": [f.to_json() for f in findings]},
                         ensure_ascii=False))
    else:
        _table(findings)
    return EXIT_FAULT if faults else EXIT_OK


def _table(findings: list[Finding]) -> None:
    mark = {Status.OK: "正常 ok", Status.FAULT: "故障 FAULT", Status.SKIPPED: "跳过 skip"}
    width = max(len(f.check) for f in findings)
    for finding in findings:
        print(f"{finding.check:<{width}}  {mark[finding.status]:<10}  {finding.detail}")
        if finding.fix:
            print(f"{'':<{width}}  {'':<10}  → 修复 / fix: {finding.fix}")
