"""Alembic environment: run by gridsense_server.db.migrate with the server's own engine.

Also works from the command line for developers (``alembic -x url=sqlite:///x.db ...`` with a
small ini pointing script_location here), using the ``url`` given with ``-x``.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine, create_engine

from gridsense_server.db.models import Base

config = context.config
target_metadata = Base.metadata


def _engine() -> Engine:
    engine = config.attributes.get("engine")
    if engine is not None:
        return engine
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        raise RuntimeError("no database: pass -x url=... or set sqlalchemy.url")
    return create_engine(url)


def run_migrations_offline() -> None:
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata,
                      literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    with _engine().connect() as connection:
        # render_as_batch: SQLite cannot ALTER most things; batch mode recreates the table.
        context.configure(connection=connection, target_metadata=target_metadata,
                          render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
