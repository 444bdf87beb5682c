"""Shared by the lifecycle tests: a registry with the whole hierarchy, a database, a clock you
can move, and an incident opened the way ingest opens one."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from gridsense_protocol import Incident, Severity, utc_now
from gridsense_server.config import LifecycleConfig
from gridsense_server.counters import Counters
from gridsense_server.db import make_engine, make_session_factory, upgrade
from gridsense_server.live.hub import LiveHub
from gridsense_server.registry.registry_file import parse_registry
from gridsense_server.registry.store import apply_registry
from gridsense_server.workorders.incidents import IncidentService

HIERARCHY_YAML = """\
streets:
  - id: hx
    name: 湖西街道
    communities:
      - id: ly
        name: 莲园社区
        grids:
          - id: g01
            name: 第一网格
            micro_grids: [{id: g01-a, name: 1-3号楼}]
            contacts: {robot: "json://127.0.0.1:9/unused"}
          - {id: g02, name: 第二网格}
points:
  - {id: gw-01.boiler, gateway: gw-01, grid: g01-a, name: 1号楼锅炉房}
  - {id: gw-02.boiler, gateway: gw-02, grid: g02, name: 2号楼锅炉房}
staff:
  - {username: worker-g01, name: 张伟, role: worker, grids: [g01], password: demo}
  - {username: night-g01, name: 夜班, role: worker, password: demo}
  - {username: leader-g01, name: 王强, role: leader, grids: [g01], password: demo}
  - {username: worker-g02, name: 李娜, role: worker, grids: [g02], password: demo}
  - {username: duty-ly, name: 社区值班, role: duty_officer, communities: [ly], password: demo}
  - {username: centre-hx, name: 街道指挥中心, role: command_centre, streets: [hx],
     password: demo}
  - {username: control, name: 监控中心, role: control, password: demo}
rosters:
  - {id: g01-night, grid: g01, role: worker, starts: "20:00", ends: "08:00",
     staff: [night-g01]}
"""

FAST = {
    "sla": {"accept_s": 30, "resolve_s": 600},
    "policies": {"fast": {
        "steps": [{"after_s": 0, "notify": ["workers"]},
                  {"after_s": 30, "notify": ["leader"]},
                  {"after_s": 60, "notify": ["duty_officer", "command_centre"]}],
        "remind_after_s": 120, "unaccept_after_s": 240,
    }},
}


# 11:00 in Shanghai: the day shift (the night roster covers 20:00-08:00).
DAY = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)


@dataclass
class Clock:
    now: datetime = DAY

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


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
