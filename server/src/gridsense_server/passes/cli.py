"""``gridsense-server passes``: the deployment's pass signing keys (rotate, retire, list), a
community's site key and setting, and one-time sign-in codes for residents' phones.

Writes the database (and the key folder) directly; a running server notices the moved
credential versions within the sync's resync period and pushes the keys to the gateways.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from ..audit import CLI_ADDRESS, cli_actor, record
from ..config import ServerConfig
from ..secure_files import FileProblem
from . import keys, residents
from .service import key_dir

EXIT_CONFIG = 2


def add_parser(verbs: Any) -> None:
    cmd = verbs.add_parser("passes", help="electronic passes: signing keys, site keys, "
                                          "residents' sign-in codes")
    actions = cmd.add_subparsers(dest="action", required=True)
    actions.add_parser("rotate-key", help="add a signing key; it signs from now on (old keys "
                                          "still verify until retired)")
    retire = actions.add_parser("retire-key", help="stop accepting a signing key at the gates")
    retire.add_argument("key_id", type=int)
    actions.add_parser("keys", help="list the signing keys (public halves)")
    site = actions.add_parser("rotate-site-key", help="a new site MAC key for a community's "
                                                      "compact passes (old ones dropped)")
    site.add_argument("--community", required=True)
    site.add_argument("--keep-old", action="store_true", help="keep accepting the old keys")
    setting = actions.add_parser("settings", help="a community's pass setting")
    setting.add_argument("--community", required=True)
    setting.add_argument("--compact", choices=("on", "off"), required=True,
                         help="on: the gates read through OSDP readers (62-character passes)")
    code = actions.add_parser("code", help="a one-time sign-in code for a resident's phone")
    code.add_argument("--credential", required=True, help="the resident's credential id")
    code.add_argument("--days", type=int, default=7)
    for parser in (*actions.choices.values(),):
        parser.add_argument("--config", type=Path, required=True)
        parser.add_argument("--json", action="store_true")


def run(args: argparse.Namespace, factory: sessionmaker[Session], config: ServerConfig) -> int:
    try:
        with factory.begin() as session:
            result = _act(args, session, config)
            record(session, cli_actor(), f"passes.{args.action}", str(result.get("target", "")),
                   {k: v for k, v in result.items() if k != "code"}, CLI_ADDRESS)
    except (LookupError, FileProblem) as exc:
        print(str(exc).strip("'\""), file=sys.stderr)
        return EXIT_CONFIG
    if args.json:
        print(json.dumps(result, ensure_ascii=False, default=str))
    else:
        print(result.pop("say"))
    return 0


def _act(args: argparse.Namespace, session: Session, config: ServerConfig) -> dict[str, Any]:
    if args.action == "rotate-key":
        key_id = keys.add_signing_key(session, key_dir(config))
        return {"target": key_id, "key_id": key_id,
                "say": f"签名密钥 {key_id} 已启用（{keys.key_file(key_dir(config), key_id)}）/ "
                       f"signing key {key_id} now signs"}
    if args.action == "retire-key":
        keys.retire_signing_key(session, args.key_id)
        return {"target": args.key_id, "say": f"签名密钥 {args.key_id} 已停用 / signing key "
                                              f"{args.key_id} retired"}
    if args.action == "keys":
        rows = [{"key_id": k.key_id, "public": k.public, "created_at": k.created_at.isoformat(),
                 "retired_at": k.retired_at and k.retired_at.isoformat()}
                for k in keys.all_signing_keys(session)]
        return {"target": "", "keys": rows,
                "say": "\n".join(f"{r['key_id']}\t{r['public']}\t"
                                 f"{'停用 retired' if r['retired_at'] else '有效 active'}"
                                 for r in rows) or "无签名密钥 / no signing keys"}
    if args.action == "rotate-site-key":
        key_id = keys.rotate_site_key(session, args.community, args.keep_old)
        return {"target": args.community, "key_id": key_id,
                "say": f"{args.community} 的站点密钥 {key_id} 已启用 / site key {key_id}"}
    if args.action == "settings":
        site = keys.pass_site(session, args.community)
        site.compact = args.compact == "on"
        keys.bump(session, args.community)
        return {"target": args.community, "compact": site.compact,
                "say": f"{args.community}: 紧凑通行证 compact passes {args.compact}"}
    code, expires = residents.issue_code(session, args.credential, cli_actor(),
                                         timedelta(days=args.days))
    url = config.lifecycle.public_url.rstrip("/") + "/#/r"
    return {"target": args.credential, "credential": args.credential, "code": code,
            "expires_at": expires.isoformat(), "sign_in_url": url,
            "say": f"登录码 / sign-in code: {code}\n有效期至 / expires: {expires:%Y-%m-%d %H:%M} "
                   f"UTC\n在手机上打开 / open on the phone: {url}"}
