"""``gridsense-edge simulate modbus``: run simulated sensors from a scenario file until stopped."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType

from gridsense_edge.simulator.modbus import ModbusSensorSimulator
from gridsense_edge.simulator.scenario import ScenarioPlayer, load_scenario
from gridsense_protocol.yamlconfig import ConfigError

log = logging.getLogger(__name__)

EXIT_OK, EXIT_START_FAILED, EXIT_BAD_SCENARIO = 0, 1, 2


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``simulate`` (with its ``modbus`` sub-command) to the edge CLI."""
    simulate = subparsers.add_parser("simulate", help="run simulated field devices")
    kinds = simulate.add_subparsers(dest="simulator", required=True, metavar="DEVICE")
    modbus = kinds.add_parser(
        "modbus",
        help="Modbus RTU sensors on a pseudo-terminal",
        description="Serve simulated Modbus RTU sensors on a pty linked at --link.",
    )
    modbus.add_argument("--scenario", type=Path, required=True, help="scenario YAML file")
    modbus.add_argument(
        "--link", type=Path, required=True, help="symlink to create for clients (e.g. ./ttySIM0)"
    )
    modbus.add_argument(
        "--duration", type=float, default=None, metavar="S", help="stop after S seconds"
    )
    modbus.add_argument(
        "--profiles-dir", type=Path, default=None, help="device profiles (default: built-in)"
    )
    modbus.add_argument("--seed", type=int, default=None, help="seed for noise and garbage")
    modbus.add_argument("--json", action="store_true", help="print the ready line as JSON")
    modbus.set_defaults(func=run)
    osdp = kinds.add_parser(
        "osdp",
        help="OSDP card readers (libosdp PeripheralDevices) on a pseudo-terminal",
        description="Serve simulated OSDP readers on a pty linked at --link. Actions are read "
        "from stdin, one JSON object per line, e.g. {\"do\": \"card\", \"reader\": 1, "
        "\"number\": 100200}; do = card|pin|scan|open|close|exit|tamper|silent|back|garbage "
        "(scan: {\"do\": \"scan\", \"text\": \"GS1:P:...\"}, a QR code through the reader, "
        "at most 64 bytes). "
        "Every command the control panel sends (lock output, LED, buzzer) is printed as a JSON "
        "line.",
    )
    osdp.add_argument(
        "--link", type=Path, required=True, help="symlink to create for the control panel"
    )
    osdp.add_argument(
        "--reader", action="append", required=True, metavar="ADDRESS:KEYFILE",
        help="a reader's OSDP address and the file holding its 16-byte key in hex (repeatable)",
    )
    osdp.add_argument("--seed", type=int, default=None, help="seed for line garbage")
    osdp.add_argument("--json", action="store_true", help="print the ready line as JSON")
    osdp.set_defaults(func=_run_osdp)


add_parser = register  # the name the edge CLI's other sub-commands use


def run(args: argparse.Namespace) -> int:
    try:
        scenario = load_scenario(args.scenario, args.profiles_dir)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_BAD_SCENARIO
    simulator = ModbusSensorSimulator(
        args.link, scenario.simulated_sensors(), profiles_dir=args.profiles_dir, seed=args.seed
    )
    stop = threading.Event()
    previous = {sig: signal.signal(sig, _stopper(stop)) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        try:
            simulator.start()
        except (RuntimeError, OSError) as exc:
            print(f"simulate modbus: {exc}", file=sys.stderr)
            return EXIT_START_FAILED
        _announce(args, simulator)
        ScenarioPlayer(scenario, simulator).play(stop, args.duration)
    finally:
        simulator.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    log.info("event=simulator_stopped link=%s", args.link)
    return EXIT_OK


def _run_osdp(args: argparse.Namespace) -> int:
    from gridsense_edge.simulator.osdp_cli import run_osdp

    return run_osdp(args)


def _stopper(stop: threading.Event) -> Callable[[int, FrameType | None], None]:
    def handle(signum: int, _frame: FrameType | None) -> None:
        log.info("event=signal_received signal=%s", signal.Signals(signum).name)
        stop.set()

    return handle


def _announce(args: argparse.Namespace, simulator: ModbusSensorSimulator) -> None:
    slaves = list(simulator.slaves)
    if args.json:
        line = json.dumps({"event": "ready", "link": str(args.link), "slaves": slaves})
    else:
        line = f"event=ready link={args.link} slaves={','.join(map(str, slaves))}"
    print(line, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Stand-alone entry (``python -m gridsense_edge.simulator.cli simulate modbus ...``)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    parser = argparse.ArgumentParser(prog="gridsense-edge")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
