"""Lifecycle benches (not tests: nothing is asserted on time).

    scripts/bench lifecycle registry  [--points 50000 --staff 5000]
    scripts/bench lifecycle scheduler [--open 100000 --due 1000]

registry: validate and load a registry of that size (staff with password_hash:, as a large
registry should) into SQLite and PostgreSQL, first load and an unchanged reload.
scheduler: 100,000 open incidents, each with its pending escalation step; the cost of one
scheduler pass when nothing is due (the index lookup every tick pays) and of executing
``--due`` due steps (page recipients, history, next step).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import insert

from gridsense_devtools.clock import Clock
from gridsense_devtools.community import FAST, HIERARCHY_YAML
from gridsense_protocol import new_event_id
from gridsense_server.config import LifecycleConfig
from gridsense_server.counters import Counters
from gridsense_server.db import make_engine, make_session_factory, upgrade
from gridsense_server.db.models import EscalationStep, Incident
from gridsense_server.escalation.scheduler import EscalationScheduler
from gridsense_server.notify.links import LinkSigner
from gridsense_server.registry.passwords import hash_password
from gridsense_server.registry.registry_file import RegistryFile, _context
from gridsense_server.registry.store import apply_registry
from gridsense_server.workorders.escalation_steps import StepName

PG = "postgresql+psycopg://postgres@127.0.0.1:5432/{db}"


def _pg_database() -> str | None:
    try:
        import psycopg

        name = f"gs_bench_{new_event_id().lower()}"
        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres",
                             autocommit=True, connect_timeout=3) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        return name
    except Exception:
        return None


def _drop_pg(name: str) -> None:
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres",
                         autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _urls(folder: Path) -> list[tuple[str, str, str | None]]:
    urls: list[tuple[str, str, str | None]] = [("sqlite", f"sqlite:///{folder / 'b.db'}", None)]
    pg = _pg_database()
    if pg is not None:
        urls.append(("postgresql", PG.format(db=pg), pg))
    return urls


def registry_document(points: int, staff: int) -> dict:
    grids_per_community, communities = 50, max(1, points // 5000)
    streets = [{"id": "st", "name": "街道", "communities": [
        {"id": f"c{c}", "name": f"社区{c}", "grids": [
            {"id": f"c{c}-g{g}", "name": f"网格{g}",
             "micro_grids": [{"id": f"c{c}-g{g}-m{m}", "name": f"微网格{m}"} for m in range(4)]}
            for g in range(grids_per_community)]} for c in range(communities)]}]
    grid_ids = [f"c{c}-g{g}" for c in range(communities) for g in range(grids_per_community)]
    password_hash = hash_password("bench")
    return {
        "streets": streets,
        "points": [{"id": f"gw-{i // 20:05d}.p{i % 20:02d}", "gateway": f"gw-{i // 20:05d}",
                    "grid": grid_ids[i % len(grid_ids)], "name": f"点位{i}"}
                   for i in range(points)],
        "staff": [{"username": f"u{i:05d}", "name": f"员工{i}",
                   "role": "worker" if i % 5 else "leader",
                   "grids": [grid_ids[i % len(grid_ids)]], "password_hash": password_hash}
                  for i in range(staff)],
    }


def bench_registry(points: int, staff: int) -> None:
    document = registry_document(points, staff)
    started = time.perf_counter()
    registry = RegistryFile.model_validate(document, context=_context())
    validate_s = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as tmp:
        for backend, url, pg in _urls(Path(tmp)):
            engine = make_engine(url)
            upgrade(engine)
            factory = make_session_factory(engine)
            started = time.perf_counter()
            apply_registry(factory, registry)
            first_s = time.perf_counter() - started
            started = time.perf_counter()
            apply_registry(factory, registry)
            again_s = time.perf_counter() - started
            engine.dispose()
            if pg is not None:
                _drop_pg(pg)
            print(json.dumps({"bench": "registry_load", "backend": backend, "points": points,
                              "staff": staff, "validate_s": round(validate_s, 2),
                              "first_load_s": round(first_s, 2),
                              "unchanged_reload_s": round(again_s, 2)}), flush=True)


def bench_scheduler(open_count: int, due: int) -> None:
    config = LifecycleConfig.model_validate(FAST)
    from gridsense_server.registry.registry_file import parse_registry

    with tempfile.TemporaryDirectory() as tmp:
        for backend, url, pg in _urls(Path(tmp)):
            engine = make_engine(url)
            upgrade(engine)
            factory = make_session_factory(engine)
            apply_registry(factory, parse_registry(HIERARCHY_YAML))
            clock = Clock()
            start = clock.now
            incidents, steps = [], []
            for i in range(open_count):
                iid = new_event_id()
                incidents.append({
                    "id": iid, "point_id": f"p{i}", "grid_id": "g01-a", "gateway": "gw-01",
                    "type": "over_temperature", "severity": "major", "state": "new",
                    "alarm": "active", "opened_at": start, "last_seen_at": start, "count": 1,
                    "value": 70.0, "message": "", "first_event_id": new_event_id(),
                    "state_changed_at": start, "backfilled": False, "level": "community",
                    "accept_due_at": start, "resolve_due_at": start, "policy": "fast"})
                # The first ``due`` are due now; the rest in an hour.
                when = start if i < due else start + timedelta(hours=1)
                steps.append({"incident_id": iid, "step": str(StepName("page", 1, when)),
                              "loop": 0, "due_at": when, "status": "pending"})
            with factory.begin() as session:
                for n in range(0, open_count, 5000):
                    session.execute(insert(Incident), incidents[n:n + 5000])
                    session.execute(insert(EscalationStep), steps[n:n + 5000])
            scheduler = EscalationScheduler(factory, config, LinkSigner(b"b" * 20, "http://b",
                                                                        3600),
                                            Counters(), clock=clock)
            started = time.perf_counter()
            executed = len(scheduler.run_due())
            due_s = time.perf_counter() - started
            idle = []
            for _ in range(20):
                started = time.perf_counter()
                scheduler.run_due()
                idle.append(time.perf_counter() - started)
            idle.sort()
            engine.dispose()
            if pg is not None:
                _drop_pg(pg)
            print(json.dumps({
                "bench": "escalation_scheduler", "backend": backend, "open": open_count,
                "due_executed": executed, "due_pass_s": round(due_s, 2),
                "per_step_ms": round(due_s / max(1, executed) * 1000, 2),
                "idle_pass_ms_p50": round(idle[len(idle) // 2] * 1000, 2),
                "idle_pass_ms_max": round(idle[-1] * 1000, 2)}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("which", choices=["registry", "scheduler"], nargs="*",
                        default=["registry", "scheduler"])
    parser.add_argument("--points", type=int, default=50_000)
    parser.add_argument("--staff", type=int, default=5_000)
    parser.add_argument("--open", type=int, default=100_000)
    parser.add_argument("--due", type=int, default=1_000)
    args = parser.parse_args()
    if "registry" in args.which:
        bench_registry(args.points, args.staff)
    if "scheduler" in args.which:
        bench_scheduler(args.open, args.due)


if __name__ == "__main__":
    main()
