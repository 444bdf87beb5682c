"""Registry: validation naming file:line: key, idempotent upsert on SQLite and PostgreSQL,
argon2 hashes, grid ownership."""

from __future__ import annotations

from pathlib import Path

import pytest
from server_helpers import REGISTRY_YAML
from sqlalchemy import func, select

from gridsense_protocol.yamlconfig import ConfigError
from gridsense_server.db import make_engine, make_session_factory, upgrade
from gridsense_server.db.models import Grid, Point, Staff, StaffGrid
from gridsense_server.registry.directory import PointDirectory
from gridsense_server.registry.passwords import verify_password
from gridsense_server.registry.registry_file import load_registry_file, parse_registry
from gridsense_server.registry.store import apply_registry
from gridsense_server.registry.viewers import Viewer, load_viewer, owns_point


@pytest.fixture
def factory(db_url: str):
    engine = make_engine(db_url)
    upgrade(engine)
    yield make_session_factory(engine)
    engine.dispose()


def _counts(factory) -> dict[str, int]:
    with factory() as session:
        return {
            model.__tablename__: session.scalar(select(func.count()).select_from(model))
            for model in (Grid, Point, Staff, StaffGrid)
        }


def test_loading_the_same_file_twice_changes_nothing(factory, registry_file: Path) -> None:
    registry = load_registry_file(registry_file)
    first = apply_registry(factory, registry)
    assert first["grid.created"] == 3
    assert first["point.created"] == 3
    assert first["staff.created"] == 3
    counts = _counts(factory)
    with factory() as session:
        hash_before = session.get(Staff, "worker-g01").password_hash

    second = apply_registry(factory, load_registry_file(registry_file))
    assert all(key.endswith(".unchanged") for key in second), second
    assert _counts(factory) == counts
    with factory() as session:
        staff = session.get(Staff, "worker-g01")
        assert staff.password_hash == hash_before
        assert staff.password_hash.startswith("$argon2id$")
        assert verify_password(staff.password_hash, "demo")
        assert not verify_password(staff.password_hash, "wrong")


def test_a_changed_file_updates_rows_and_replaces_staff_grids(
    factory, registry_file: Path
) -> None:
    apply_registry(factory, load_registry_file(registry_file))
    changed = REGISTRY_YAML.replace("    grid: g01-a\n", "    grid: g02\n").replace(
        "grids: [g01]", "grids: [g02]"
    ).replace("password: demo\n", "password: changed\n")
    stats = apply_registry(factory, parse_registry(changed))
    assert stats["point.updated"] == 1
    assert stats["staff.updated"] == 1
    with factory() as session:
        assert session.get(Point, "gw-01.boiler").grid_id == "g02"
        assert verify_password(session.get(Staff, "worker-g01").password_hash, "changed")
        viewer = load_viewer(session, "worker-g01")
    assert viewer is not None and viewer.grids == frozenset({"g02"})


def test_ownership_covers_micro_grids_and_control_sees_everything(
    factory, registry_file: Path
) -> None:
    apply_registry(factory, load_registry_file(registry_file))
    with factory() as session:
        worker = load_viewer(session, "worker-g01")
        other = load_viewer(session, "worker-g02")
        control = load_viewer(session, "control")
        assert load_viewer(session, "nobody") is None
        assert worker == Viewer("worker-g01", "worker", frozenset({"g01", "g01-a"}))
        assert other is not None and other.grids == frozenset({"g02"})
        assert control is not None and control.grids is None
        assert owns_point(session, worker, "gw-01.boiler")  # in micro-grid g01-a
        assert owns_point(session, worker, "gw-01.pump")  # in g01 itself
        assert not owns_point(session, worker, "gw-02.boiler")
        assert not owns_point(session, worker, "unregistered.point")
        assert owns_point(session, control, "unregistered.point")
    assert not worker.sees_grid(None)
    assert control.sees_grid(None)


def test_point_directory_maps_points_to_grids(factory, registry_file: Path) -> None:
    apply_registry(factory, load_registry_file(registry_file))
    directory = PointDirectory()
    directory.reload(factory)
    assert directory.grid_of("gw-01.boiler") == "g01-a"
    assert directory.grid_of("nope") is None
    assert len(directory) == 3


def test_password_hash_is_taken_as_is(factory) -> None:
    from gridsense_server.registry.passwords import hash_password

    given = hash_password("s3cret")
    text = REGISTRY_YAML.replace("    password: ctl\n", f"    password_hash: '{given}'\n")
    apply_registry(factory, parse_registry(text))
    with factory() as session:
        assert session.get(Staff, "control").password_hash == given


BAD_CASES = [
    ("    grid: g01-a\n", "    grid: g09\n", 17, "points[0].grid", "unknown grid 'g09'"),
    ("    grids: [g02]\n", "    grids: [g02, gx]\n", 37, "staff[1].grids[1]", "unknown grid 'gx'"),
    ("  - id: gw-02.boiler\n", "  - id: gw-01.pump\n", 24, "points[2].id",
     "duplicate point id 'gw-01.pump'"),
    ("          - id: g02\n", "          - id: g01-a\n", 12, "grids[1].id",
     "duplicate grid id 'g01-a'"),
    ("    role: control\n", "    role: boss\n", 41, "staff[2].role", "Input should be"),
    ("    password: ctl\n", "", 39, "staff[2]", "exactly one of password: or password_hash:"),
    ("  - id: gw-01.pump\n", "  - id: gw 01.pump\n", 20, "points[1].id", "should match"),
    ("    name: 水泵房\n", "    name: 水泵房\n    floor: 2\n", 24, "points[1].floor",
     "unknown key"),
]


@pytest.mark.parametrize(("old", "new", "line", "key", "message"), BAD_CASES)
def test_errors_name_file_line_and_key(
    tmp_path: Path, old: str, new: str, line: int, key: str, message: str
) -> None:
    assert old in REGISTRY_YAML
    path = tmp_path / "registry.yaml"
    path.write_text(REGISTRY_YAML.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_registry_file(path)
    text = str(caught.value)
    assert text.startswith(f"{path}:{line}: "), text
    assert key in text and message in text, text
