"""Relational state: models, engine, migrations."""

from . import access_models, dead_letters, web_models  # noqa: F401  (so Base.metadata has their tables)
from .engine import make_engine, make_session_factory
from .migrate import upgrade

__all__ = ["make_engine", "make_session_factory", "upgrade"]
