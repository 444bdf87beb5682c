"""Relational state: models, engine, migrations."""

from . import (  # noqa: F401  (so Base.metadata has their tables)
    access_models,
    cluster_models,
    commissioning_models,
    dead_letters,
    enrollment_models,
    onsite_models,
    page_reads,
    pass_models,
    plan_models,
    registry_version,
    remote_config_models,
    unassigned,
    web_models,
)
from .engine import make_engine, make_session_factory
from .migrate import upgrade

__all__ = ["make_engine", "make_session_factory", "upgrade"]
