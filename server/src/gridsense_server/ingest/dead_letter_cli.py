"""``gridsense-server dead-letters``: list, show, replay, purge.

Works on the database directly (the server need not run); a running server takes the dead
letters marked for replay back into ingest within seconds.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
from pathlib import Path
from typing import Any

from ..audit import CLI_ADDRESS, cli_actor, record_now
from ..db.dead_letters import DeadLetter, DeadLetterStore

EXIT_USAGE = 2


def add_parser(verbs: Any) -> None:
    dead = verbs.add_parser("dead-letters",
                            help="messages set aside unapplied, with their reason")
    actions = dead.add_subparsers(dest="action", required=True)
    lst = actions.add_parser("list", help="newest first (no payloads)")
    show = actions.add_parser("show", help="one dead letter with its payload")
    show.add_argument("id", type=int)
    replay = actions.add_parser(
        "replay", help="mark for replay: the running server decodes and routes them again; "
                       "one that fails again comes back with its new reason")
    replay.add_argument("ids", type=int, nargs="*", help="dead letter ids (or --all)")
    purge = actions.add_parser("purge", help="delete dead letters (all, or one gateway's)")
    for parser in (lst, replay, purge):
        parser.add_argument("--gateway", help="only this gateway's")
    lst.add_argument("--limit", type=int, default=100)
    replay.add_argument("--all", action="store_true", help="every dead letter (of --gateway)")
    for parser in (lst, show, replay, purge):
        parser.add_argument("--config", type=Path, required=True)
        parser.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace, store: DeadLetterStore) -> int:
    if args.action == "list":
        rows = store.recent(gateway=args.gateway, limit=args.limit)
        if args.json:
            print(json.dumps({"dead_letters": [_summary(r) for r in rows],
                              "total": store.count(), "dropped_by_cap": store.dropped()}))
        else:
            for r in rows:
                print(f"{r.id}\t{r.received_at.isoformat()}\t{r.gateway or '?'}\t{r.topic}\t"
                      f"{r.size} B\t{r.reason}")
            print(f"{store.count()} kept, {store.dropped()} dropped by the cap")
        return 0
    if args.action == "show":
        row = store.get(args.id)
        if row is None:
            print(f"no dead letter {args.id}", file=sys.stderr)
            return EXIT_USAGE
        shown = _summary(row) | {"payload_base64": base64.b64encode(row.payload).decode()}
        if args.json:
            print(json.dumps(shown))
        else:
            print("\n".join(f"{k}: {v}" for k, v in _summary(row).items()))
            print("payload:", row.payload[:2000].decode("utf-8", "backslashreplace"))
        return 0
    if args.action == "replay":
        if not args.ids and not args.all:
            print("name dead letter ids, or --all", file=sys.stderr)
            return EXIT_USAGE
        marked = store.request_replay(None if args.all else args.ids, gateway=args.gateway)
        record_now(store.factory, cli_actor(), "dead_letters.replay",
                   "all" if args.all else ",".join(map(str, args.ids))[:200],
                   {"marked": marked, "gateway": args.gateway}, CLI_ADDRESS)
        print(json.dumps({"marked": marked}) if args.json else f"{marked} marked for replay")
        return 0
    purged = store.purge(gateway=args.gateway)
    record_now(store.factory, cli_actor(), "dead_letters.purge", args.gateway or "all",
               {"purged": purged}, CLI_ADDRESS)
    print(json.dumps({"purged": purged}) if args.json else f"{purged} purged")
    return 0


def _summary(row: DeadLetter) -> dict[str, Any]:
    return {"id": row.id, "received_at": row.received_at.isoformat(), "topic": row.topic,
            "gateway": row.gateway, "reason": row.reason, "size": row.size,
            "replay_requested": row.replay_requested}
