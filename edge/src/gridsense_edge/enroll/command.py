"""The ``enroll`` subcommand: its arguments, the steps in order, what the installer reads."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

DEFAULT_STATE_DIR = Path("/var/lib/gridsense-edge")
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_REFUSED = 0, 1, 2, 4


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    enroll = subparsers.add_parser(
        "enroll", help="join a deployment with a one-time enrollment code",
        description="注册网关：生成密钥与证书请求，凭一次性注册码从服务器取得"
        "代理账号、证书和配置 / "
        "Generate a key and certificate request, trade the one-time code for a broker "
        "account, a client certificate and a starting config, stored 0600 in the state folder.")
    enroll.add_argument("--server", help="server URL, e.g. https://gridsense.lan")
    enroll.add_argument("--code", help="the one-time code, e.g. ABCDE-FGHJK")
    enroll.add_argument("--uri", help="what the QR code says (gridsense-enroll:?server=…&"
                        "code=…&ca_sha256=…), instead of --server, --code, --ca-fingerprint")
    enroll.add_argument("--ca-fingerprint", help="the deployment CA's SHA-256 (from the code "
                        "page or QR code): the server is trusted only if its CA has it")
    enroll.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR,
                        help=f"where the gateway keeps its state (default {DEFAULT_STATE_DIR})")
    enroll.add_argument("--force", action="store_true",
                        help="replace an existing enrollment in the state folder")
    enroll.add_argument("--json", action="store_true", help="print the result as JSON")
    enroll.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Imported here: `gridsense-edge run` must not pay for cryptography's memory.
    from ..config import ConfigError, load_config
    from .client import (
        EnrollFailure,
        FailureKind,
        Server,
        normalize_fingerprint,
        parse_enroll_uri,
    )
    from .state import CONFIG, new_key_and_request, store

    if args.uri:
        try:
            args.server, args.code, scanned = parse_enroll_uri(args.uri)
        except ValueError as exc:
            return _fail(args, "bad_uri", EXIT_USAGE, str(exc))
        args.ca_fingerprint = args.ca_fingerprint or scanned
    if not args.server or not args.code:
        return _fail(args, "usage", EXIT_USAGE, "需要 --server 和 --code，或 --uri / give "
                     "--server and --code, or --uri")
    state_dir: Path = args.state_dir.absolute()
    if (state_dir / CONFIG).exists() and not args.force:
        return _fail(args, "already_enrolled", EXIT_USAGE,
                     f"已注册过：{state_dir / CONFIG} 已存在，重新注册请加 --force / already "
                     f"enrolled: {state_dir / CONFIG} exists (use --force to replace it)")
    try:
        fingerprint = (normalize_fingerprint(args.ca_fingerprint)
                       if args.ca_fingerprint else None)
    except ValueError as exc:
        return _fail(args, FailureKind.FINGERPRINT, EXIT_USAGE, str(exc))
    server = Server(args.server.rstrip("/"), fingerprint)
    key, request = new_key_and_request()
    try:
        ca_pem = server.trusted_ca()
        answer = server.enroll(args.code.strip(), request, ca_pem)
    except EnrollFailure as failure:
        refused = failure.kind not in (FailureKind.UNREACHABLE, FailureKind.SERVER)
        return _fail(args, failure.kind, EXIT_REFUSED if refused else EXIT_FAILED, str(failure))
    config_path = store(state_dir, key, answer)
    try:
        load_config(config_path)  # the agent's own loader: what it will run with
    except ConfigError as exc:
        return _fail(args, FailureKind.SERVER, EXIT_FAILED, f"配置无效 / config invalid: {exc}")
    result = {"ok": True, "gateway": answer["gateway"], "config": str(config_path),
              "broker": answer.get("broker"), "tls": bool(answer.get("cert_pem"))}
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
        return EXIT_OK
    print(f"注册成功 / enrolled: 网关 gateway {answer['gateway']}")
    print(f"  配置 / config: {config_path}")
    print("下一步 / next steps:")
    print(f"  1. 添加设备 / add devices to {config_path} (devices:)")
    print(f"  2. 自检 / check: gridsense-edge check-config --config {config_path}")
    print(f"  3. 运行 / run: gridsense-edge run --config {config_path}")
    return EXIT_OK


def _fail(args: argparse.Namespace, kind: str, code: int, message: str) -> int:
    if args.json:
        print(json.dumps({"ok": False, "error": kind, "message": message},
                         ensure_ascii=False))
    else:
        print(f"注册失败 / enrollment failed: {message}", file=sys.stderr)
    return code
