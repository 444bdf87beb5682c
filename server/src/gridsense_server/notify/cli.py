"""``gridsense-server notify test <username|grid> [--channel NAME]``: a test message on each
of the person's (or grid's) channels, now, with each vendor's answer. Exit 0 when every one
was accepted, 1 when a vendor refused one, 2 for an unknown person, grid or channel."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session, sessionmaker

from gridsense_protocol import utc_now

from ..config import LifecycleConfig
from .channel_check import UnknownAddressee, send_test
from .channels import ChannelSet


def add_parser(verbs: Any) -> None:
    notify = verbs.add_parser("notify", help="notification channels: send a test message")
    actions = notify.add_subparsers(dest="action", required=True)
    test = actions.add_parser("test", help="send a test message to a person or a grid")
    test.add_argument("who", help="a username, or a grid id (grid:g01 or g01)")
    test.add_argument("--channel", help="only this channel (a contacts: name)")
    test.add_argument("--config", type=Path, required=True)
    test.add_argument("--json", action="store_true", help="print the answers as JSON")


def run(args: argparse.Namespace, factory: sessionmaker[Session], channels: ChannelSet,
        lifecycle: LifecycleConfig) -> int:
    try:
        results = send_test(factory, channels, args.who, args.channel, utc_now(),
                            ZoneInfo(lifecycle.timezone))
    except UnknownAddressee as exc:
        print(str(exc), file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({"results": [r.to_json() for r in results]}, ensure_ascii=False))
    else:
        for r in results:
            verdict = "已送达 (accepted)" if r.status == "sent" else f"失败 ({r.status})"
            print(f"{r.channel}\t{r.target}\t{verdict}\t{r.vendor} {r.code}: {r.detail}")
    return 0 if all(r.status == "sent" for r in results) else 1
