"""``gridsense-server credentials``: import residents' credentials from CSV, list them.

Writes the database directly (the server need not run); a running server notices the new
version within ``RESYNC_S`` and pushes it to the community's gateways.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..audit import CLI_ADDRESS, cli_actor, record
from . import credentials as creds

EXIT_CONFIG = 2


def add_parser(verbs: Any) -> None:
    cred = verbs.add_parser("credentials", help="import or list residents' access credentials")
    actions = cred.add_subparsers(dest="action", required=True)
    imp = actions.add_parser(
        "import", help="create or replace credentials from a CSV file (all or nothing)",
        description="CSV header: " + ",".join(creds.CSV_COLUMNS) + " (doors and buildings "
        "separated by ';', times ISO with a zone). A bad row refuses the whole file and is "
        "reported as 'line N: field: problem' (never the card number). Exit 2 on refusal.")
    imp.add_argument("--config", type=Path, required=True)
    imp.add_argument("--community", required=True, help="community id in the registry")
    imp.add_argument("--csv", type=Path, required=True)
    imp.add_argument("--json", action="store_true", help="print the result as JSON")
    lst = actions.add_parser("list", help="list a community's credentials (no card numbers)")
    lst.add_argument("--config", type=Path, required=True)
    lst.add_argument("--community", required=True)
    lst.add_argument("--revoked", action="store_true", help="include revoked credentials")


def run(args: argparse.Namespace, app: Any) -> int:
    app.migrate()
    if args.action == "list":
        with app.factory() as session:
            rows = creds.list_credentials(session, args.community, args.revoked, limit=100_000)
            for row in rows:
                print(json.dumps(creds.CredentialView.of(row).model_dump(mode="json"),
                                 ensure_ascii=False))
        return 0
    try:
        items = creds.parse_csv(args.csv.read_text(encoding="utf-8"))
        with app.factory.begin() as session:
            version = creds.upsert(session, args.community, items)
            record(session, cli_actor(), "credential.import", args.community,
                   {"credentials": len(items), "version": version, "file": str(args.csv)},
                   CLI_ADDRESS)
    except creds.CredentialProblem as exc:
        for problem in exc.problems[:50]:
            print(f"{args.csv}: {problem}", file=sys.stderr)
        return EXIT_CONFIG
    except LookupError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_CONFIG
    result = {"community": args.community, "imported": len(items), "version": version}
    print(json.dumps(result) if args.json else " ".join(f"{k}={v}" for k, v in result.items()))
    return 0
