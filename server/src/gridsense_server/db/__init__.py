"""Relational state: models, engine, migrations."""

from . import access_models  # noqa: F401  (so Base.metadata includes the access tables)
from .engine import make_engine, make_session_factory
from .migrate import upgrade

__all__ = ["make_engine", "make_session_factory", "upgrade"]
