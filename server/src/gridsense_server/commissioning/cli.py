"""``gridsense-server commission GATEWAY --installer USER``: start a commissioning run, wait for
its drill (the running server sends the page), print the report and write it as a printable
page. Exit 0 green, 3 red or still pending when the wait ran out."""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import Any

from ..audit import CLI_ADDRESS, cli_actor
from .html import render
from .service import CommissionError, Commissioning

POLL_S = 1.0
EXIT_NOT_GREEN = 3


def add_parser(verbs: Any) -> None:
    commission = verbs.add_parser(
        "commission", help="check a gateway: its points' readings and a drill page to the "
                           "installer (the running server sends the page)")
    commission.add_argument("gateway")
    commission.add_argument("--config", type=Path, required=True)
    commission.add_argument("--installer", required=True, help="the staff member to page")
    commission.add_argument("--wait", type=float, default=120.0, metavar="S",
                            help="wait this long for the drill to be delivered (default 120)")
    commission.add_argument("--html", type=Path, help="also write the printable report here")
    commission.add_argument("--json", action="store_true", help="print the report as JSON")


def _text(report: dict[str, Any]) -> str:
    drill = report["drill"]
    lines = [f"网关 gateway {report['gateway']}  调试记录 run {report['id']}",
             f"结论 verdict: {report['verdict']}"]
    lines += [f"  - {reason['text']}" for reason in report["reasons"]]
    for point in report["points"]:
        first = point["first"]
        reading = (f"{first[0]['metric']}={first[0]['value']:g} at {first[0]['t']}" if first
                   else "无读数 no reading")
        lines.append(f"{point['point']}\t{point['name']}\t{reading}")
    lines.append(f"演练 drill: {drill['outcome']} via {drill['reached_via'] or '-'}; delivery "
                 f"{drill['delivery_s']} s, round trip {drill['round_trip_s']} s")
    return "\n".join(lines)


async def run(args: argparse.Namespace, service: Commissioning, timezone: str) -> int:
    try:
        run_id = await asyncio.to_thread(service.start, args.gateway, cli_actor(),
                                         args.installer, CLI_ADDRESS)
    except CommissionError as error:
        print(str(error))
        return 2
    deadline = time.monotonic() + args.wait
    while True:
        report = await service.report(run_id)
        if report["verdict"] != "pending" or time.monotonic() >= deadline:
            break
        await asyncio.sleep(POLL_S)
    if args.html is not None:
        args.html.write_text(render(report, timezone), encoding="utf-8")
    print(json.dumps(report, ensure_ascii=False, indent=2) if args.json else _text(report))
    return 0 if report["verdict"] == "green" else EXIT_NOT_GREEN
