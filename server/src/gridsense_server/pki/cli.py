"""``gridsense-server ca init|issue-server|issue-client|show``: the deployment CA by hand."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .ca import CaError, DeploymentCA, Issued

EXIT_USAGE = 2


def add_parser(verbs: Any) -> None:
    ca = verbs.add_parser("ca", help="the deployment CA: create it, issue certificates, show")
    sub = ca.add_subparsers(dest="ca_verb", required=True)
    for name, text in (("init", "create the CA in --dir unless it exists"),
                       ("issue-server", "issue a server certificate (broker, web server)"),
                       ("issue-client", "issue a client certificate (CN = a gateway id)"),
                       ("show", "the CA and the certificates it issued")):
        verb = sub.add_parser(name, help=text)
        verb.add_argument("--dir", type=Path, required=True, help="the CA folder")
        verb.add_argument("--json", action="store_true", help="print JSON")
        if name.startswith("issue"):
            verb.add_argument("name", help="file name and CN (e.g. broker, gw-01)")
            verb.add_argument("--days", type=int, default=825)
        if name == "issue-server":
            verb.add_argument("--dns", action="append", default=[], metavar="NAME",
                              help="a DNS name clients connect to (repeatable)")
            verb.add_argument("--ip", action="append", default=[], metavar="ADDRESS",
                              help="an IP address clients connect to (repeatable)")


def run(args: argparse.Namespace) -> int:
    directory: Path = args.dir
    try:
        if args.ca_verb == "init":
            ca, created = DeploymentCA.init(directory)
            _print(args.json, {**ca.to_json(), "created": created},
                   f"{'created' if created else 'exists'}: {ca.cert_file}")
            return 0
        ca = DeploymentCA.open(directory)
        if args.ca_verb == "show":
            _print(args.json, ca.to_json(), _show_text(ca))
            return 0
        if args.ca_verb == "issue-server":
            issued = ca.issue_server(args.name, dns=args.dns, ips=args.ip, days=args.days)
        else:
            issued = ca.issue_client(args.name, days=args.days)
        _print(args.json, issued.to_json(), _issued_text(issued))
        return 0
    except CaError as exc:
        print(f"ca {args.ca_verb}: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _print(as_json: bool, document: dict[str, Any], text: str) -> None:
    print(json.dumps(document, indent=2) if as_json else text)


def _issued_text(issued: Issued) -> str:
    names = ", ".join([*issued.dns, *issued.ips]) or "-"
    return (f"{issued.name}: {issued.subject} until {issued.not_after:%Y-%m-%d} (names: {names})"
            f"\n  certificate {issued.cert_file}\n  key         {issued.key_file}")


def _show_text(ca: DeploymentCA) -> str:
    document = ca.to_json()
    lines = [f"CA {document['subject']} until {document['not_after'][:10]}",
             f"  certificate {ca.cert_file}", f"  sha256 {document['sha256']}"]
    lines += [_issued_text(issued) for issued in ca.issued()]
    return "\n".join(lines)
