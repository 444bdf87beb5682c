"""``gridsense-server config``: set a gateway's configuration (validated), show it, compare
versions, see desired against running and the history, change a whole community.

Writes the database directly (the server need not run); a running server pushes a new
version within seconds.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy.orm import Session, sessionmaker

from ..audit import CLI_ADDRESS, cli_actor
from . import versions
from .bulk import bulk_change, split_change
from .validate import InvalidConfig

EXIT_REFUSED = 2
EXIT_PAUSED = 3  # a bulk change stopped at a gateway that did not apply it


def add_parser(verbs: Any) -> None:
    config = verbs.add_parser("config", help="gateways' remote configuration: versions, "
                              "push, desired against running, history, bulk changes")
    actions = config.add_subparsers(dest="action", required=True)
    put = actions.add_parser("set", help="a new version from a YAML/JSON file (validated; "
                             "exit 2 when refused)")
    put.add_argument("gateway")
    put.add_argument("--file", type=Path, required=True)
    put.add_argument("--reason", required=True, help="why (kept in the history)")
    show = actions.add_parser("show", help="a version's document (default: the newest)")
    show.add_argument("gateway")
    show.add_argument("--version", type=int)
    status = actions.add_parser("status", help="desired against running, last apply")
    status.add_argument("gateway")
    history = actions.add_parser("history", help="versions (who, when, why) and applies")
    history.add_argument("gateway")
    diff = actions.add_parser("diff", help="what changed between two versions")
    diff.add_argument("gateway")
    diff.add_argument("old", type=int)
    diff.add_argument("new", type=int)
    bulk = actions.add_parser("bulk", help="one change to every gateway of a community, one "
                              "gateway at a time; pauses at the first failure (exit 3)")
    bulk.add_argument("--community", required=True)
    bulk.add_argument("--set", dest="change", required=True, metavar="PATH=VALUE",
                      help="e.g. 'rules[type=over_temperature].threshold=70' (VALUE is YAML)")
    bulk.add_argument("--reason", required=True)
    bulk.add_argument("--timeout", type=float, default=120.0,
                      help="seconds to wait for each gateway's report")
    for parser in (put, show, status, history, diff, bulk):
        parser.add_argument("--config", type=Path, required=True)
        parser.add_argument("--json", action="store_true")


def run(args: argparse.Namespace, factory: sessionmaker[Session]) -> int:
    try:
        return _ACTIONS[args.action](args, factory)
    except InvalidConfig as exc:
        print(f"配置被拒绝 / config refused: {exc.gateway}", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_REFUSED
    except (versions.Unchanged, LookupError, ValueError) as exc:
        print(f"未更改 / not changed: {exc}", file=sys.stderr)
        return EXIT_REFUSED


def _out(args: argparse.Namespace, value: Any, text: str) -> None:
    print(json.dumps(value, ensure_ascii=False, default=str) if args.json else text)


def _set(args: argparse.Namespace, factory: sessionmaker[Session]) -> int:
    document = yaml.safe_load(args.file.read_text(encoding="utf-8"))
    with factory.begin() as session:
        row = versions.create_version(session, args.gateway, document, cli_actor(),
                                      args.reason, CLI_ADDRESS)
        result = {"gateway": args.gateway, "version": row.version, "hash": row.hash}
    _out(args, result, f"{args.gateway}: 版本 / version {result['version']} "
         f"({str(result['hash'])[:12]})")
    return 0


def _show(args: argparse.Namespace, factory: sessionmaker[Session]) -> int:
    with factory() as session:
        row = (versions.get_version(session, args.gateway, args.version)
               if args.version is not None else versions.latest(session, args.gateway))
        if row is None:
            raise LookupError(f"gateway {args.gateway} has no config version")
        document = row.document
    _out(args, document, yaml.safe_dump(document, sort_keys=False, allow_unicode=True).rstrip())
    return 0


def _status(args: argparse.Namespace, factory: sessionmaker[Session]) -> int:
    with factory() as session:
        view = versions.status(session, args.gateway).model_dump(mode="json")
    _out(args, view, "\n".join(f"{k}: {v}" for k, v in view.items()))
    return 0


def _history(args: argparse.Namespace, factory: sessionmaker[Session]) -> int:
    with factory() as session:
        kept, applies = versions.history(session, args.gateway)
    value = {"versions": [v.model_dump(mode="json") for v in kept],
             "applies": [a.model_dump(mode="json") for a in applies]}
    lines = [f"v{v.version}\t{v.created_at}\t{v.author}\t{v.hash[:12]}\t{v.reason}"
             for v in kept]
    lines += [f"v{a.version}\t{a.reported_at}\t{a.state}\t{a.reason or ''}" for a in applies]
    _out(args, value, "\n".join(lines))
    return 0


def _diff(args: argparse.Namespace, factory: sessionmaker[Session]) -> int:
    with factory() as session:
        old = versions.get_version(session, args.gateway, args.old).document
        new = versions.get_version(session, args.gateway, args.new).document
    lines = versions.diff(old, new, f"v{args.old}", f"v{args.new}")
    _out(args, lines, "\n".join(lines))
    return 0


def _bulk(args: argparse.Namespace, factory: sessionmaker[Session]) -> int:
    path, text = split_change(args.change)
    report = bulk_change(factory, args.community, path, yaml.safe_load(text),
                         cli_actor(), args.reason, args.timeout)
    value = report.__dict__
    lines = [f"{d['gateway']}: {d['state']}" + (f" ({d['reason']})" if d.get("reason") else "")
             for d in report.done]
    if report.paused_at is not None:
        lines.append(f"已暂停 / paused at {report.paused_at}; 未处理 / not touched: "
                     f"{', '.join(report.left) or '-'}")
    _out(args, value, "\n".join(lines))
    return EXIT_PAUSED if report.paused_at is not None else 0


_ACTIONS = {"set": _set, "show": _show, "status": _status, "history": _history,
            "diff": _diff, "bulk": _bulk}
