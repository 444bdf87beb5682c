"""``gridsense-server audit``: list (newest first) or export as CSV, with the API's filters.

Reads the database directly (the server need not run)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from .query import AuditFilter, as_dict, export_csv, page

EXPORT_MAX_ROWS = 10_000_000


def add_parser(verbs: Any, iso_time: Callable[[str], datetime]) -> None:
    """``iso_time``: the CLI's own parser of --since/--until (one rule for every verb)."""
    audit = verbs.add_parser("audit", help="the audit log: who did what, when, from where")
    actions = audit.add_subparsers(dest="action", required=True)
    lst = actions.add_parser("list", help="newest first")
    lst.add_argument("--limit", type=int, default=100)
    lst.add_argument("--json", action="store_true", help="one JSON object a line")
    export = actions.add_parser("export", help="CSV, oldest first")
    export.add_argument("--output", "-o", type=Path, help="file (default: standard output)")
    for parser in (lst, export):
        parser.add_argument("--config", type=Path, required=True)
        parser.add_argument("--actor")
        parser.add_argument("--action", dest="action_filter",
                            help="exact, or a prefix ending in '.' (login.)")
        parser.add_argument("--target")
        parser.add_argument("--since", type=iso_time, help="ISO time, at or after")
        parser.add_argument("--until", type=iso_time, help="ISO time, before")


def run(args: argparse.Namespace, factory: sessionmaker[Session]) -> int:
    filters = AuditFilter(args.actor, args.action_filter, args.target, args.since, args.until)
    if args.action == "list":
        with factory() as session:
            rows = [as_dict(row) for row in page(session, filters, max(1, args.limit))]
        for row in rows:
            print(json.dumps(row, ensure_ascii=False) if args.json else
                  f"{row['id']}\t{row['at']}\t{row['actor']}\t{row['action']}\t"
                  f"{row['target']}\t{row['address']}\t{row['detail']}")
        return 0
    out = args.output.open("w", encoding="utf-8", newline="") if args.output else sys.stdout
    try:
        rows_written = -1  # the header is not a row
        for line in export_csv(factory, filters, EXPORT_MAX_ROWS):
            out.write(line)
            rows_written += 1
    finally:
        if args.output:
            out.close()
    if args.output:
        print(f"{rows_written} 条记录写入 {args.output} / {rows_written} rows written",
              file=sys.stderr)
    return 0
