"""``gridsense-server``: run, migrate, load-registry, import-registry, export-registry,
hash-password, check, credentials (import/list), dead-letters (list/show/replay/purge),
unassigned (list), notify (test), ca (the deployment CA), broker (accounts on the broker),
audit (list/export), auth (unlock/logout-everywhere), commission (a gateway's check),
config (gateways' remote configuration: set/show/status/history/diff/bulk).

Exit codes: 0 done (check: clean), 1 failed while running (check: InfluxDB or the database
unreachable), 2 bad config / registry / usage, 3 check found gaps or duplicates (commission:
not green).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import logging
import signal
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.exc import SQLAlchemyError

from gridsense_protocol.yamlconfig import ConfigError, load_yaml_file

from .access_control import cli as access_cli
from .audit import CLI_ADDRESS, cli_actor, record_now
from .audit import cli as audit_cli
from .auth import cli as auth_cli
from .broker import cli as broker_cli
from .commissioning import cli as commission_cli
from .config import ServerConfig, load_server_config
from .db.engine import display_url
from .ingest import dead_letter_cli, unassigned_cli
from .logs import kv, setup_logging
from .notify import cli as notify_cli
from .passes import cli as passes_cli
from .pki import cli as ca_cli
from .registry.passwords import hash_password
from .remote_config import cli as remote_config_cli
from .secure_files import FileProblem

if TYPE_CHECKING:
    from .app import ServerApp

log = logging.getLogger("gridsense_server")

EXIT_FAILED = 1
EXIT_CONFIG = 2
EXIT_PROBLEMS = 3


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gridsense-server",
        description="gridsense server: MQTT ingest, InfluxDB writer, incidents, HTTP API.",
    )
    parser.add_argument("--log-level", default="INFO",
                        choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    verbs = parser.add_subparsers(dest="verb", required=True)

    run = verbs.add_parser("run", help="run the server (migrates, loads the registry, serves)")
    run.add_argument("--config", type=Path, required=True, help="server.yaml")
    run.add_argument("--workers", type=int, default=1, metavar="N",
                     help="N server processes sharing the load (PostgreSQL only; "
                          "docs/scaling.md, \"Several workers\")")
    # Set by the parent of --workers for each worker it starts: not for people.
    for hidden in ("--worker", "--of", "--port", "--redirect-port"):
        run.add_argument(hidden, type=int, default=None, help=argparse.SUPPRESS)

    migrate = verbs.add_parser("migrate", help="create or upgrade the database schema")
    migrate.add_argument("--config", type=Path, required=True)

    load = verbs.add_parser("load-registry", help="validate and upsert a registry file")
    load.add_argument("--config", type=Path, required=True)
    load.add_argument("file", type=Path, help="registry.yaml")
    load.add_argument("--json", action="store_true", help="print the counts as JSON")

    imp = verbs.add_parser("import-registry",
                           help="validate and upsert a registry: a YAML file or a CSV folder")
    imp.add_argument("--config", type=Path, required=True)
    imp.add_argument("path", type=Path, help="registry.yaml, or a folder of grids/points/"
                                             "staff/rosters .csv files")
    imp.add_argument("--json", action="store_true", help="print the counts as JSON")

    exp = verbs.add_parser("export-registry", help="write the registry as YAML or CSV files")
    exp.add_argument("--config", type=Path, required=True)
    exp.add_argument("--format", choices=["yaml", "csv"], default="yaml")
    exp.add_argument("path", type=Path, help="the YAML file, or the folder for the CSV files")

    verbs.add_parser("hash-password",
                     help="read a password on stdin, print its argon2 hash (for password_hash:)")

    check = verbs.add_parser(
        "check", help="report sequence gaps, series gaps and duplicate incidents",
        description="Exit 0 when clean, 3 when gaps or duplicates were found, 1 when InfluxDB "
                    "or the database cannot be read, 2 on a config error.")
    check.add_argument("--config", type=Path, required=True)
    check.add_argument("--gateway", help="only this gateway (default: every gateway)")
    check.add_argument("--since", type=_timestamp, default=None,
                       help="ISO time; series and incidents from then (default: 24 h ago)")
    check.add_argument("--until", type=_timestamp, default=None,
                       help="ISO time; end of the window (default: now)")
    check.add_argument("--max-gap", type=float, default=5.0, metavar="S",
                       help="report series gaps longer than S seconds (default 5)")
    check.add_argument("--measurement", default="temperature",
                       help="InfluxDB measurement whose series are checked")
    check.add_argument("--json", action="store_true", help="print the report as JSON")
    access_cli.add_parser(verbs)
    remote_config_cli.add_parser(verbs)
    dead_letter_cli.add_parser(verbs)
    unassigned_cli.add_parser(verbs)
    notify_cli.add_parser(verbs)
    ca_cli.add_parser(verbs)
    broker_cli.add_parser(verbs)
    audit_cli.add_parser(verbs, _timestamp)
    auth_cli.add_parser(verbs)
    commission_cli.add_parser(verbs)
    passes_cli.add_parser(verbs)
    return parser


def _timestamp(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO time: {text!r}") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    setup_logging(args.log_level)
    try:
        if args.verb == "hash-password":
            return _hash_password()
        if args.verb == "ca":
            return ca_cli.run(args)  # needs no server config: the CA may be made before it
        if args.verb == "broker":
            # The broker's accounts come before the server's config; with it, a change is
            # also recorded in the server's audit log.
            status = broker_cli.run(args)
            if status == 0 and getattr(args, "account_verb", "list") in _BROKER_CHANGES:
                _audit_broker_change(args)
            return status
        config = load_server_config(args.config)
        if args.verb == "check":
            return _check(config, args)
        from .app import ServerApp  # here: hash-password needs none of the server's machinery

        if args.verb == "run" and (args.workers != 1 or args.worker is not None):
            return _run_workers(args, config)
        app = ServerApp(config)
        if args.verb == "migrate":
            app.migrate()
            log.info(kv("migrated", database=display_url(config.database.url)))
            return 0
        if args.verb == "credentials":
            return access_cli.run(args, app)
        if args.verb == "config":
            app.migrate()
            return remote_config_cli.run(args, app.factory)
        if args.verb in ("audit", "auth"):
            app.migrate()
            return (audit_cli.run(args, app.factory) if args.verb == "audit"
                    else auth_cli.run(args, app.factory, config))
        if args.verb == "passes":
            app.migrate()
            return passes_cli.run(args, app.factory, config)
        if args.verb == "dead-letters":
            app.migrate()
            return dead_letter_cli.run(args, app.dead_letters)
        if args.verb == "unassigned":
            app.migrate()
            return unassigned_cli.run(args, app.unassigned.store)
        if args.verb == "notify":
            app.migrate()
            return notify_cli.run(args, app.factory, app.notifier.channels, config.lifecycle)
        if args.verb == "commission":
            app.migrate()
            return asyncio.run(_commission(app, args))
        if args.verb == "export-registry":
            return _export_registry(app, args.format, args.path)
        if args.verb in ("load-registry", "import-registry"):
            app.migrate()
            stats = app.load_registry(args.file if args.verb == "load-registry" else args.path,
                                      actor=cli_actor())
            print(json.dumps(stats) if args.json else
                  "\n".join(f"{k}: {v}" for k, v in stats.items()))
            return 0
        return asyncio.run(_run(app))
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_CONFIG
    except (OSError, SQLAlchemyError) as exc:
        log.error(kv("command_failed", verb=args.verb, error=str(exc).splitlines()[0]))
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130


_BROKER_CHANGES = ("add", "passwd", "role", "revoke", "refresh")


def _run_workers(args: argparse.Namespace, config: ServerConfig) -> int:
    from . import worker_pool

    if args.worker is None:
        return worker_pool.run_pool(args.config, config, args.workers, args.log_level)
    ports = {name: port for name, port in (("port", args.port),
                                           ("redirect_port", args.redirect_port))
             if port is not None}
    return asyncio.run(_run(worker_pool.worker_app(config, args.worker, args.of or 1, ports)))


def _audit_broker_change(args: argparse.Namespace) -> None:
    """Record a broker account change when ``--config`` names the server's config (its
    database). The broker already took the change: a failure here is reported, not fatal."""
    if args.config is None:
        return
    from .db import make_engine, make_session_factory, upgrade

    try:
        # As the broker command read it: the server's own MQTT password file may not exist yet.
        config = load_yaml_file(args.config, ServerConfig).resolved(args.config.resolve().parent)
        engine = make_engine(config.database.url)
        try:
            upgrade(engine)
            detail = {"role": role} if (role := getattr(args, "role", None)) else {}
            record_now(make_session_factory(engine), cli_actor(),
                       f"broker.account.{args.account_verb}", getattr(args, "name", "*"), detail,
                       CLI_ADDRESS)
        finally:
            engine.dispose()
    except (ConfigError, OSError, SQLAlchemyError) as exc:
        print(f"broker: 已生效，但未能写入审计日志 / done, but not recorded in the audit log: "
              f"{exc}", file=sys.stderr)


async def _run(app: ServerApp) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await app.run(stop)
    except ConfigError:
        raise
    except FileProblem as exc:  # a secret, key or certificate file: the message says the fix
        print(str(exc), file=sys.stderr)
        return EXIT_CONFIG
    except Exception as exc:
        log.exception(kv("server_failed", error=repr(exc)))
        return EXIT_FAILED
    return 0


async def _commission(app: ServerApp, args: argparse.Namespace) -> int:
    """The readings are read through the server's own InfluxDB client; the drill is sent by
    the running server (its notifier reads the delivery log)."""
    from .app import load_token_secret
    from .commissioning import Commissioning
    from .notify.links import LinkSigner
    from .timeseries.reader import InfluxQLReader

    config = app.config
    secret = load_token_secret(config.auth.secret_file or config.state_dir / "token.secret")
    links = LinkSigner(secret, config.lifecycle.public_url, config.lifecycle.link_ttl_s)
    await app.writer.http.open()
    try:
        service = Commissioning(app.factory, config.commissioning, config.lifecycle, links,
                                InfluxQLReader(app.writer.http), app.counters)
        return await commission_cli.run(args, service, config.display.timezone)
    finally:
        await app.writer.http.close()


def _check(config: ServerConfig, args: argparse.Namespace) -> int:
    from .db import make_engine
    from .timeseries.checker import CheckFailed, CheckOptions, format_text, run_check

    until = args.until or datetime.now(UTC)
    options = CheckOptions(since=args.since or until - timedelta(days=1), until=until,
                           max_gap_s=args.max_gap, gateway=args.gateway,
                           measurement=args.measurement)
    engine = make_engine(config.database.url)
    try:
        report = run_check(config, engine, options)
    except CheckFailed as exc:
        print(f"check failed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        engine.dispose()
    print(json.dumps(report.to_json(), indent=2) if args.json else format_text(report))
    return EXIT_PROBLEMS if report.problems else 0


def _export_registry(app: ServerApp, fmt: str, path: Path) -> int:
    from .registry.import_export import export_document, write_csv, write_yaml

    app.migrate()
    with app.factory() as session:
        document = export_document(session)
    if fmt == "yaml":
        write_yaml(document, path)
    else:
        write_csv(document, path)
    log.info(kv("registry_exported", format=fmt, path=str(path), points=len(document["points"]),
                staff=len(document["staff"])))
    return 0


def _hash_password() -> int:
    if sys.stdin.isatty():
        password = getpass.getpass("password: ")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        print("no password given on stdin", file=sys.stderr)
        return EXIT_CONFIG
    print(hash_password(password))
    return 0


if __name__ == "__main__":
    sys.exit(main())
