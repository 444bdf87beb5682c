"""The ``install-service`` subcommand: write the unit, check it with ``systemd-analyze
verify`` where that exists, and print the remaining steps (they need root)."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
UNIT_NAME = "gridsense-edge.service"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    install = subparsers.add_parser(
        "install-service", help="write a hardened systemd unit for the agent",
        description="写入加固的 systemd 服务单元并用 systemd-analyze verify 检查 / "
        "Write a hardened "
        "systemd unit (own user, dialout group, read-only system but the state folder, memory "
        "cap, watchdog) and check it with systemd-analyze verify.")
    install.add_argument("--config", type=Path, required=True, help="gateway config YAML")
    install.add_argument("--unit-dir", type=Path, default=Path("/etc/systemd/system"),
                         help="where to write the unit (default /etc/systemd/system)")
    install.add_argument("--user", default="gridsense", help="the service's own user")
    install.add_argument("--memory-max", default="256M", help="systemd MemoryMax (e.g. 256M)")
    install.add_argument("--watchdog-s", type=int, default=60, help="systemd WatchdogSec")
    install.add_argument("--json", action="store_true", help="print the result as JSON")
    install.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..config import ConfigError, load_config
    from .unit import UnitSpec, render

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"配置无效 / invalid config: {exc}", file=sys.stderr)
        return EXIT_USAGE
    executable = Path(sys.argv[0]).absolute() if Path(sys.argv[0]).name == "gridsense-edge" \
        else Path(shutil.which("gridsense-edge") or sys.argv[0]).absolute()
    spec = UnitSpec(config.gateway.id, executable, args.config.absolute(),
                    config.gateway.state_dir, args.user, args.memory_max, args.watchdog_s)
    unit = args.unit_dir / UNIT_NAME
    try:
        args.unit_dir.mkdir(parents=True, exist_ok=True)
        unit.write_text(render(spec), encoding="utf-8")
        os.chmod(unit, 0o644)
    except OSError as exc:
        print(f"写不了服务单元 / cannot write {unit}: {exc} (以 root 运行 / run as root)",
              file=sys.stderr)
        return EXIT_FAILED
    verified, problems = verify(unit)
    result = {"ok": verified is not False, "unit": str(unit), "verified": verified,
              "problems": problems}
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    else:
        print(f"已写入 / written: {unit}")
        if verified is None:
            print("  未检查：没有 systemd-analyze / not verified: no systemd-analyze here")
        elif not verified:
            print(f"  检查未通过 / systemd-analyze verify found problems:\n{problems}")
        print("下一步（root）/ next steps (as root):")
        print(f"  useradd --system --home-dir {spec.state_dir} --shell /usr/sbin/nologin "
              f"{spec.user}")
        print(f"  chown -R {spec.user}: {spec.state_dir}")
        print(f"  systemctl daemon-reload && systemctl enable --now {UNIT_NAME}")
        print(f"  日志 / logs: journalctl -u {UNIT_NAME} -f")
    return EXIT_OK if verified is not False else EXIT_FAILED


def verify(unit: Path) -> tuple[bool | None, str]:
    """(True, "") when ``systemd-analyze verify`` accepts the unit; None without the tool."""
    tool = shutil.which("systemd-analyze")
    if tool is None:
        return None, ""
    done = subprocess.run([tool, "verify", str(unit)], capture_output=True, text=True,
                          timeout=60, check=False)
    # verify also reports on units the file pulls in that this machine lacks; only lines
    # naming our unit are about what we wrote.
    ours = [line for line in (done.stdout + done.stderr).splitlines() if unit.name in line]
    return (done.returncode == 0 or not ours), "\n".join(ours)
