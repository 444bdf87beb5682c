"""``gridsense-server unassigned list``: the points gateways report that the registry does not
assign — what the installer still has to register. Reads the database (the server need not
run; a running one writes what it hears every few seconds)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ..db.unassigned import UnassignedStore


def add_parser(verbs: Any) -> None:
    unassigned = verbs.add_parser(
        "unassigned", help="points gateways report that the registry does not assign")
    actions = unassigned.add_subparsers(dest="action", required=True)
    lst = actions.add_parser("list", help="gateway by gateway, most recently heard of first")
    lst.add_argument("--gateway", help="only this gateway's")
    lst.add_argument("--config", type=Path, required=True)
    lst.add_argument("--json", action="store_true", help="print the list as JSON")


def run(args: argparse.Namespace, store: UnassignedStore) -> int:
    rows = store.all(gateway=args.gateway)
    if args.json:
        print(json.dumps({"unassigned_points": [
            {"gateway": r.gateway, "point": r.point, "first_seen": r.first_seen.isoformat(),
             "last_seen": r.last_seen.isoformat(), "count": r.count} for r in rows]}))
        return 0
    for r in rows:
        print(f"{r.gateway}\t{r.point}\t{r.first_seen.isoformat()}\t{r.last_seen.isoformat()}\t"
              f"{r.count}")
    print(f"{len(rows)} 个未登记点位 (unassigned points): 在登记表中登记后重新加载即从此列表移除 "
          "(register them in the registry and load it: they leave this list)")
    return 0
