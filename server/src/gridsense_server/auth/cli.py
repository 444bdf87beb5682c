"""``gridsense-server auth``: unlock an account or address; end a user's browser sessions.

Works on the database directly, so it helps even when nobody can sign in to the web page."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from ..audit import CLI_ADDRESS, cli_actor, record_now
from ..config import ServerConfig
from .addresses import throttle_subject
from .sessions import SessionStore
from .throttle import Throttle


def add_parser(verbs: Any) -> None:
    auth = verbs.add_parser("auth", help="sign-in throttle and browser sessions")
    actions = auth.add_subparsers(dest="action", required=True)
    unlock = actions.add_parser("unlock", help="lift the sign-in delay or lockout of an account "
                                               "or an address")
    unlock.add_argument("subject", metavar="USER|ADDR")
    logout = actions.add_parser("logout-everywhere", help="end every browser session of a user")
    logout.add_argument("username")
    for parser in (unlock, logout):
        parser.add_argument("--config", type=Path, required=True)
        parser.add_argument("--json", action="store_true")


def run(args: argparse.Namespace, factory: sessionmaker[Session], config: ServerConfig) -> int:
    if args.action == "unlock":
        # Every scope: the throttle's scope name does not matter to an unlock.
        throttle = Throttle(factory, config.auth.throttle, "login")
        cleared = throttle.unlock([f"user:{args.subject}", throttle_subject(args.subject)])
        record_now(factory, cli_actor(), "auth.unlock", args.subject, {"cleared": cleared},
                   CLI_ADDRESS)
        print(json.dumps({"cleared": cleared}) if args.json else
              f"已解除 {args.subject} 的 {cleared} 条限制 / {cleared} throttle entries cleared")
        return 0
    revoked = SessionStore(factory, config.auth.sessions).revoke_all(args.username)
    record_now(factory, cli_actor(), "logout.everywhere", args.username, {"sessions": revoked},
               CLI_ADDRESS)
    print(json.dumps({"revoked": revoked}) if args.json else
          f"已结束 {args.username} 的 {revoked} 个会话 / {revoked} sessions ended")
    return 0
