"""Shared by the lifecycle tests: a registry with the whole hierarchy, a database, a clock you
can move, and an incident opened the way ingest opens one."""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy.orm import Session, sessionmaker

from gridsense_devtools.clock import Clock as Clock
from gridsense_devtools.community import FAST as FAST
from gridsense_devtools.community import HIERARCHY_YAML as HIERARCHY_YAML
from gridsense_protocol import Incident, Severity, utc_now
from gridsense_server.config import LifecycleConfig
from gridsense_server.counters import Counters
from gridsense_server.db import make_engine, make_session_factory, upgrade
from gridsense_server.live.hub import LiveHub
from gridsense_server.registry.registry_file import parse_registry
from gridsense_server.registry.store import apply_registry
from gridsense_server.workorders.incidents import IncidentService


def database(db_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(db_url)
    upgrade(engine)
    factory = make_session_factory(engine)
    apply_registry(factory, parse_registry(HIERARCHY_YAML))
    yield factory
    engine.dispose()


def open_incident(factory: sessionmaker[Session], config: LifecycleConfig, *, seq: int = 1,
                  point: str = "gw-01.boiler", severity: Severity = Severity.MAJOR,
                  type: str = "over_temperature", clock: Clock | None = None) -> str:
    counters = Counters()
    clock = clock or Clock(utc_now())
    service = IncidentService(factory, LiveHub(counters), counters, late_after_s=3600,
                              lifecycle=config, clock=clock)
    message = Incident(gateway=point.split(".")[0], seq=seq, ts=clock.now, point=point,
                       type=type, severity=severity, value=70.0, message="hot")
    change = service.record_batch([message])[0]
    assert change is not None
    return str(change.incident["id"])
