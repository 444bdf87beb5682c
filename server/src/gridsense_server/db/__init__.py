"""Relational state: models, engine, migrations."""

from .engine import make_engine, make_session_factory
from .migrate import upgrade

__all__ = ["make_engine", "make_session_factory", "upgrade"]
