"""``gridsense-edge``: run the gateway agent, check a config, or simulate devices."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from . import agent_version

EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_CANNOT_START = 0, 1, 2, 3

_EPILOG = """exit codes:
  0  success, or a clean stop on SIGTERM/SIGINT
  1  unexpected failure
  2  bad usage or invalid config (file:line: key.path: problem)
  3  cannot start here (state folder not writable or used by another agent, ...)
"""


def _add_run(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run = subparsers.add_parser(
        "run",
        help="run the gateway agent",
        description="Poll the configured devices, evaluate local rules and publish over MQTT. "
        "Starts even when the broker or a serial port is unavailable and keeps retrying.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("--config", type=Path, required=True, help="gateway config YAML")
    run.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="log verbosity (default INFO); logs are key=value lines on stderr",
    )
    run.set_defaults(func=_cmd_run)


def _add_check(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    check = subparsers.add_parser(
        "check-config",
        help="validate a gateway config and print a summary",
        description="Validate a gateway config (including device profiles) without connecting "
        "anywhere. Prints a summary, or every problem as file:line: key.path: problem.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.add_argument("--config", type=Path, required=True, help="gateway config YAML")
    check.add_argument("--json", action="store_true", help="print the result as JSON")
    check.set_defaults(func=_cmd_check)


def _cmd_check(args: argparse.Namespace) -> int:
    from .config import ConfigError, load_config

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        if args.json:
            problems = [{"file": exc.source, "line": line, "path": path, "problem": msg}
                        for path, line, msg in exc.problems]
            print(json.dumps({"valid": False, "problems": problems}, ensure_ascii=False))
        else:
            print(exc, file=sys.stderr)
        return EXIT_CONFIG
    summary = config.summary()
    if args.json:
        print(json.dumps({"valid": True, **summary}, ensure_ascii=False))
        return EXIT_OK
    print(f"{args.config}: valid")
    print(f"  gateway  {summary['gateway']}  state_dir {summary['state_dir']}")
    print(f"  mqtt     {summary['mqtt']}")
    for bus in summary["buses"]:
        print(f"  bus      {bus['id']}  {bus['port']}")
    for device in summary["devices"]:
        where = f"  on {device['bus']}" if "bus" in device else ""
        print(f"  device   {device['point']}  {device['type']}{where}")
    for rule in summary["rules"]:
        print(f"  rule     {rule['type']}  points {', '.join(rule['points'])}")
    for warning in summary["warnings"]:
        print(f"  warning  {warning}")
    return EXIT_OK


def _cmd_run(args: argparse.Namespace) -> int:
    from .config import ConfigError, load_config

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_CONFIG
    try:
        config.gateway.state_dir.mkdir(parents=True, exist_ok=True)
        probe = config.gateway.state_dir / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        print(f"{args.config}: gateway.state_dir: cannot write {config.gateway.state_dir}: "
              f"{exc.strerror}", file=sys.stderr)
        return EXIT_CANNOT_START

    import asyncio
    import logging
    import os
    import signal

    from .agent import Agent
    from .logs import configure_logging, log_event, set_static_field
    from .transport.outbox_db import StateDirBusy

    configure_logging(args.log_level)
    set_static_field("gateway", config.gateway.id)

    async def main() -> None:
        stop = asyncio.Event()

        def on_signal() -> None:
            if stop.is_set():  # a second signal while stopping: the operator means it
                os._exit(EXIT_FAILED)
            stop.set()

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, on_signal)
        await Agent(config).run(stop)

    try:
        asyncio.run(main())
    except StateDirBusy as exc:
        print(f"{args.config}: gateway.state_dir: {exc}", file=sys.stderr)
        return EXIT_CANNOT_START
    except Exception as exc:  # logged with its traceback; the exit code says it failed
        log_event(logging.getLogger("gridsense_edge"), "agent_failed", logging.CRITICAL,
                  exc_info=exc, error=repr(exc))
        return EXIT_FAILED
    return EXIT_OK


def _register_simulator(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    try:
        from .simulator import cli as simulator_cli
    except ImportError:  # an install without the simulator still runs the agent
        return
    simulator_cli.register(subparsers)


def build_parser(full: bool = True) -> argparse.ArgumentParser:
    """``full``: every command. Without it only ``run`` and ``check-config``, so the agent's
    resident process does not hold the tools' modules (enroll, doctor, discover, service,
    simulator) it never calls."""
    parser = argparse.ArgumentParser(
        prog="gridsense-edge",
        description="gridsense gateway agent: device drivers, local rules, MQTT uplink.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"gridsense-edge {agent_version()}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_run(subparsers)
    _add_check(subparsers)
    if not full:
        return parser
    from .discover import register as register_discover
    from .doctor import register as register_doctor
    from .enroll import register as register_enroll
    from .service import register as register_service

    register_enroll(subparsers)
    register_doctor(subparsers)
    register_discover(subparsers)
    register_service(subparsers)
    _register_simulator(subparsers)
    return parser


def _command_of(argv: Sequence[str]) -> str | None:
    return next((a for a in argv if not a.startswith("-")), None)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # `run` and `check-config` do not need the other commands' modules loaded; everything else
    # (help, usage errors, the tools) gets the full command list.
    parser = build_parser(full=_command_of(argv) not in ("run", "check-config"))
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
