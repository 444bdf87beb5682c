"""``gridsense-edge simulate osdp``: simulated readers driven by JSON lines on stdin.

Exit codes: 0 stopped (SIGTERM/SIGINT or end of stdin), 1 could not start, 2 bad arguments.
A bad action line is reported on stderr and skipped; it never stops the readers.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from pathlib import Path

from gridsense_edge.simulator.osdp import OsdpReaderSimulator, ReceivedCommand, SimulatedReader

log = logging.getLogger(__name__)

EXIT_OK, EXIT_START_FAILED, EXIT_BAD_ARGS = 0, 1, 2


def parse_readers(specs: list[str]) -> list[SimulatedReader]:
    readers = []
    for spec in specs:
        address, _, key_file = spec.partition(":")
        if not address.isdigit() or not key_file:
            raise ValueError(f"--reader {spec!r}: expected ADDRESS:KEYFILE")
        key = bytes.fromhex(Path(key_file).read_text(encoding="ascii").strip())
        if len(key) != 16:
            raise ValueError(f"--reader {spec!r}: the key must be 16 bytes (32 hex digits)")
        readers.append(SimulatedReader(int(address), key))
    return readers


def run_osdp(args: argparse.Namespace) -> int:
    try:
        readers = parse_readers(args.reader)
    except (OSError, ValueError) as exc:
        print(f"simulate osdp: {exc}", file=sys.stderr)
        return EXIT_BAD_ARGS
    simulator = OsdpReaderSimulator(args.link, readers, seed=args.seed)
    out_lock = threading.Lock()

    def say(document: dict[str, object]) -> None:
        with out_lock:
            print(json.dumps(document), flush=True)

    def on_command(command: ReceivedCommand) -> None:
        say({"event": "command", "reader": command.address, "command": command.name,
             "args": {k: v for k, v in command.args.items() if not isinstance(v, bytes)}})

    simulator.on_command = on_command
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        simulator.start()
    except (RuntimeError, OSError) as exc:
        print(f"simulate osdp: {exc}", file=sys.stderr)
        return EXIT_START_FAILED
    try:
        addresses = [r.address for r in readers]
        if args.json:
            say({"event": "ready", "link": str(args.link), "readers": addresses})
        else:
            with out_lock:
                print(f"event=ready link={args.link} readers={','.join(map(str, addresses))}",
                      flush=True)
        reader = threading.Thread(target=_read_actions, args=(simulator, stop), daemon=True)
        reader.start()
        stop.wait()
    finally:
        simulator.stop()
    log.info("event=simulator_stopped link=%s", args.link)
    return EXIT_OK


def _read_actions(simulator: OsdpReaderSimulator, stop: threading.Event) -> None:
    for line in sys.stdin:
        if stop.is_set():
            return
        line = line.strip()
        if not line:
            continue
        try:
            simulator.act(json.loads(line))
        except Exception as exc:  # a typo in a script must not stop the readers
            print(f"simulate osdp: bad action {line[:200]!r}: {exc}", file=sys.stderr, flush=True)
    stop.set()
