"""Fuzz the ingest path against the real stack and print the counts by outcome and reason.

    .venv/bin/python scripts/fuzz_ingest.py --payloads 100000 --seed 1 [--db-url URL] [--json]

Starts a private Mosquitto and InfluxDB and ``gridsense-server run`` as a process (SQLite in the
work folder unless --db-url names a PostgreSQL database), publishes seeded hostile payloads on
gateway topics (registered gateways and unregistered ones) with known-good canaries between
them, and waits until every message is applied or dead-lettered. Exit 0 when every invariant
holds; 1 on a crash, a stall, a lost canary or a message neither applied nor counted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

from gridsense_devtools.fuzz_ingest import fuzz_stack, run_fuzz
from gridsense_devtools.fuzz_report import as_json, broken_invariants, table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--payloads", type=int, default=10_000, help="fuzz payloads to send")
    parser.add_argument("--seed", type=int, default=1, help="same seed, same payloads")
    parser.add_argument("--chunk", type=int, default=500,
                        help="payloads between two canaries (the pacing)")
    parser.add_argument("--workers", type=int, default=2,
                        help="processes drawing payloads ahead of the sender")
    parser.add_argument("--db-url", help="SQLAlchemy URL of an empty database (default SQLite)")
    parser.add_argument("--stall-s", type=float, default=120.0,
                        help="no progress this long is a stall")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs)")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="gridsense-fuzz-"))
    began = time.monotonic()
    with fuzz_stack(work, db_url=args.db_url) as (server, broker, influx, database, db_url):
        run = run_fuzz(server, broker, influx, database, db_url, count=args.payloads,
                       seed=args.seed, chunk=args.chunk, stall_s=args.stall_s,
                       workers=args.workers,
                       progress=lambda line: print(line, file=sys.stderr, flush=True))
    problems = broken_invariants(run)
    machine = (f"{platform.machine()}, {os.cpu_count()} CPUs, Python "
               f"{platform.python_version()}, {platform.system()} {platform.release()}")
    if args.json:
        print(json.dumps({**as_json(run), "machine": machine,
                          "wall_s": round(time.monotonic() - began, 1)}, ensure_ascii=False))
    else:
        print(table(run))
        print(f"机器 machine: {machine}")
        for problem in problems:
            print(f"问题 PROBLEM: {problem}")
        print("全部不变量成立 all invariants hold" if not problems else
              f"{len(problems)} 个问题 problems; 日志 logs: {work}")
    if args.keep or problems:
        print(f"工作目录 work folder: {work}", file=sys.stderr)
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
