"""``gridsense-server broker init | account add|passwd|role|revoke|list``: broker accounts by
hand, on a running broker (no restart). Messages Chinese first, English second."""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
from pathlib import Path
from typing import Any

from gridsense_protocol.tls import ClientTls, TlsFileError
from gridsense_protocol.yamlconfig import ConfigError, load_yaml_file

from ..config import MqttConfig, MqttTlsConfig, ServerConfig, mqtt_tls_context
from .accounts import (
    ROLE_TEXT,
    Account,
    AccountError,
    AccountErrorKind,
    BrokerAccounts,
    Role,
    refresh_all,
)
from .dynsec_file import write_initial_state

EXIT_FAILED = 1  # the broker could not be reached or refused the command
EXIT_USAGE = 2  # a bad name or password, an account that exists or does not
DEFAULT_ADMIN = "gridsense-admin"
_USAGE_KINDS = (AccountErrorKind.INVALID, AccountErrorKind.EXISTS, AccountErrorKind.NOT_FOUND)


def add_parser(verbs: Any) -> None:
    broker = verbs.add_parser("broker", help="代理账号与 ACL / broker accounts and ACLs")
    sub = broker.add_subparsers(dest="broker_verb", required=True)
    init = sub.add_parser(
        "init", help="写出动态安全插件的初始状态文件 / write the dynamic-security state file",
        description="写出只含管理员的 dynamic-security.json（已存在则不动）/ write the plugin's "
                    "first state file holding only the admin (left alone if it exists).")
    init.add_argument("--file", type=Path, required=True,
                      help="plugin_opt_config_file 的路径 / the plugin's state file")
    _admin_options(init)

    account = sub.add_parser("account", help="添加、改密、改角色、吊销、列出账号 / "
                                             "add, passwd, role, revoke, list accounts")
    actions = account.add_subparsers(dest="account_verb", required=True)
    add = actions.add_parser("add", help="添加账号 / add an account")
    add.add_argument("name", help="网关 ID 或服务器进程名 / a gateway id or server process name")
    add.add_argument("--role", choices=[r.value for r in Role], required=True)
    _password_option(add)
    passwd = actions.add_parser("passwd", help="改密码（在线连接会被断开）/ new password "
                                               "(live connections are closed)")
    passwd.add_argument("name")
    _password_option(passwd)
    role = actions.add_parser("role", help="改角色 / change the role")
    role.add_argument("name")
    role.add_argument("role", choices=[r.value for r in Role])
    role.add_argument("--password-file", type=Path, default=None,
                      help="改为 server 时需要的新密码 / the new password a change to server needs")
    revoke = actions.add_parser("revoke", help="吊销账号并断开其连接 / delete the account and "
                                               "disconnect it")
    revoke.add_argument("name")
    actions.add_parser("list", help="列出账号 / list accounts")
    actions.add_parser("refresh", help="按本版本重新应用每个账号的 ACL（升级后运行）/ re-apply "
                                       "every account's ACLs as this version spells them "
                                       "(run after an upgrade)")
    for verb in (add, passwd, role, revoke, actions.choices["list"], actions.choices["refresh"]):
        _connection_options(verb)
        verb.add_argument("--json", action="store_true", help="输出 JSON / print JSON")


def _admin_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--admin", default=DEFAULT_ADMIN,
                        help=f"代理管理员账号 / the broker admin login (default {DEFAULT_ADMIN})")
    parser.add_argument("--admin-password-file", type=Path, required=True,
                        help="管理员密码文件（init 时不存在则生成）/ the admin's password file "
                             "(init makes one if missing)")


def _connection_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, default=None,
                        help="server.yaml：取其 mqtt 的地址与 TLS / take host, port, TLS from it")
    parser.add_argument("--host", default=None, help="代理地址 / broker host (127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="代理端口 / broker port (1883)")
    parser.add_argument("--ca-file", type=Path, default=None,
                        help="用 TLS 连接，校验代理证书的 CA / connect over TLS with this CA")
    _admin_options(parser)


def _password_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--password-file", type=Path, default=None,
                        help="密码文件：有内容则用之，否则生成随机密码写入（0600）；"
                             "不给则打印一次 / use its password, or write a generated one "
                             "(0600); without it the generated password is printed once")


def run(args: argparse.Namespace) -> int:
    try:
        if args.broker_verb == "init":
            password, _ = _password_from(args.admin_password_file, create=True)
            assert password is not None
            written = write_initial_state(args.file, args.admin, password)
            print(f"{'已写出' if written else '已存在，未改动'} / "
                  f"{'written' if written else 'exists, left alone'}: {args.file}")
            return 0
        return _account(args)
    except AccountError as exc:
        print(f"broker {args.broker_verb}: {exc}", file=sys.stderr)
        return EXIT_USAGE if exc.kind in _USAGE_KINDS else EXIT_FAILED
    except OSError as exc:
        print(f"broker {args.broker_verb}: {exc}", file=sys.stderr)
        return EXIT_FAILED


def _account(args: argparse.Namespace) -> int:
    from .mosquitto_dynsec import dynsec_accounts  # paho only for the verbs that connect

    host, port, tls = _connection(args)
    admin_password, _ = _password_from(args.admin_password_file, create=False)
    if admin_password is None:
        raise AccountError(AccountErrorKind.INVALID,
                           f"管理员密码文件不存在或为空 / no admin password in "
                           f"{args.admin_password_file}")
    verb = args.account_verb
    password_file: Path | None = getattr(args, "password_file", None)
    # A generated password is written only after the broker took it, so a failed add leaves
    # no file behind.
    password, generated = ((None, False) if verb in ("revoke", "list", "refresh") else
                           _password_from(password_file, create=verb != "role", write=False))
    with dynsec_accounts(host, port, args.admin, admin_password, tls=tls) as accounts:
        result = _apply(accounts, args, password)
    shown = password if generated and password_file is None else None
    if generated and password_file is not None and password is not None:
        try:
            _write_secret(password_file, password)
        except OSError as exc:
            # The broker already has it: a password nobody can read would lock the account.
            print(f"密码文件写入失败 / cannot write {password_file}: {exc}", file=sys.stderr)
            password_file, shown = None, password
    _report(args, result, password_file, shown)
    return 0


def _apply(accounts: BrokerAccounts, args: argparse.Namespace,
           password: str | None) -> Account | list[Account] | None:
    verb = args.account_verb
    if verb == "add":
        assert password is not None
        return accounts.add(args.name, Role(args.role), password)
    if verb == "passwd":
        return accounts.change(args.name, password=password)
    if verb == "role":
        return accounts.change(args.name, role=Role(args.role), password=password)
    if verb == "revoke":
        accounts.revoke(args.name)
        return None
    if verb == "refresh":
        return refresh_all(accounts)
    return accounts.list()


def _report(args: argparse.Namespace, result: Account | list[Account] | None,
            password_file: Path | None, shown_password: str | None) -> None:
    verb = args.account_verb
    if isinstance(result, list):
        if verb == "refresh" and not args.json:
            print(f"已按本版本重新应用 {len(result)} 个账号的 ACL / re-applied the ACLs of "
                  f"{len(result)} accounts")
        if args.json:
            print(json.dumps([a.to_json() for a in result], ensure_ascii=False, indent=2))
        for account in [] if args.json else result:
            role = ROLE_TEXT[account.role] if account.role else "非 gridsense 账号 / not gridsense"
            state = " 已停用 / disabled" if account.disabled else ""
            print(f"{account.name:<32} {role:<16} 登录 logins: {', '.join(account.logins)}{state}")
        return
    document: dict[str, Any] = {"action": verb, "name": args.name}
    if result is not None:
        document.update(result.to_json())
    if password_file is not None:
        document["password_file"] = str(password_file)
    if shown_password is not None:
        document["password"] = shown_password
    if args.json:
        print(json.dumps(document, ensure_ascii=False, indent=2))
        return
    done = {"add": "已添加 / added", "passwd": "已改密码，在线连接已断开 / password changed, "
            "live connections closed", "role": "已改角色 / role changed",
            "revoke": "已吊销，在线连接已断开 / revoked, live connections closed"}[verb]
    print(f"{done}: {args.name}")
    if result is not None:
        print(f"  角色 role: {ROLE_TEXT[result.role] if result.role else '-'}")
        print(f"  登录 = 客户端 ID / logins = client ids: {', '.join(result.logins)}")
    if "password_file" in document:
        print(f"  密码文件 / password file: {document['password_file']}")
    if shown_password is not None:
        print(f"  密码（只显示这一次）/ password (shown once): {shown_password}")


def _connection(args: argparse.Namespace) -> tuple[str, int, ClientTls | None]:
    mqtt = MqttConfig()
    if args.config is not None:
        # The mqtt section only: the server's own password file may not exist yet (this CLI is
        # how it gets made), so load_server_config's check of it does not apply here.
        config = load_yaml_file(args.config, ServerConfig).resolved(args.config.resolve().parent)
        mqtt = config.mqtt
    tls_config = mqtt.tls
    if args.ca_file is not None:
        tls_config = MqttTlsConfig(ca_file=args.ca_file.resolve())
    try:
        tls = None if tls_config is None else mqtt_tls_context(tls_config)
    except TlsFileError as exc:
        raise ConfigError(str(args.config or args.ca_file), [("mqtt.tls", None, str(exc))]
                          ) from None
    return args.host or mqtt.host, args.port or mqtt.port, tls


def _password_from(path: Path | None, *, create: bool, write: bool = True
                   ) -> tuple[str | None, bool]:
    """(password, generated): the file's password, or a new random one when ``create``
    (written to ``path`` now when ``write``)."""
    if path is not None and path.exists():
        text = path.read_text(encoding="utf-8").strip()
        if text:
            return text, False
    if not create:
        return None, False
    password = secrets.token_urlsafe(24)  # 192 random bits
    if path is not None and write:
        _write_secret(path, password)
    return password, True


def _write_secret(path: Path, password: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(password + "\n")
