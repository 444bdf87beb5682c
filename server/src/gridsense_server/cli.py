"""``gridsense-server``: run, migrate, load-registry, hash-password.

Exit codes: 0 done, 1 failed while running, 2 bad config / registry / usage.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import logging
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.exc import SQLAlchemyError

from gridsense_protocol.yamlconfig import ConfigError

from .config import load_server_config
from .db.engine import display_url
from .logs import kv, setup_logging
from .passwords import hash_password

if TYPE_CHECKING:
    from .app import ServerApp

log = logging.getLogger("gridsense_server")

EXIT_FAILED = 1
EXIT_CONFIG = 2


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

    migrate = verbs.add_parser("migrate", help="create or upgrade the database schema")
    migrate.add_argument("--config", type=Path, required=True)

    load = verbs.add_parser("load-registry", help="validate and upsert a registry file")
    load.add_argument("--config", type=Path, required=True)
    load.add_argument("file", type=Path, help="registry.yaml")
    load.add_argument("--json", action="store_true", help="print the counts as JSON")

    verbs.add_parser("hash-password",
                     help="read a password on stdin, print its argon2 hash (for password_hash:)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    setup_logging(args.log_level)
    try:
        if args.verb == "hash-password":
            return _hash_password()
        config = load_server_config(args.config)
        from .app import ServerApp  # here: hash-password needs none of the server's machinery

        app = ServerApp(config)
        if args.verb == "migrate":
            app.migrate()
            log.info(kv("migrated", database=display_url(config.database.url)))
            return 0
        if args.verb == "load-registry":
            app.migrate()
            stats = app.load_registry(args.file)
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


async def _run(app: ServerApp) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await app.run(stop)
    except ConfigError:
        raise
    except Exception as exc:
        log.exception(kv("server_failed", error=repr(exc)))
        return EXIT_FAILED
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
