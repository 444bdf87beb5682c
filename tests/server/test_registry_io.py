"""Registry import/export: YAML and CSV round trips on SQLite and PostgreSQL, CSV errors that
name file:row: column, and the CLI verbs."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from lifecycle_support import HIERARCHY_YAML
from sqlalchemy.orm import Session, sessionmaker

from gridsense_protocol.yamlconfig import ConfigError
from gridsense_server.cli import main
from gridsense_server.db import make_engine, make_session_factory, upgrade
from gridsense_server.registry.import_export import (
    export_document,
    read_csv_folder,
    write_csv,
    write_yaml,
)
from gridsense_server.registry.registry_file import load_registry_file, parse_registry
from gridsense_server.registry.store import apply_registry


@pytest.fixture
def factory(db_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(db_url)
    upgrade(engine)
    yield make_session_factory(engine)
    engine.dispose()


def _fresh(tmp_path: Path, name: str) -> sessionmaker[Session]:
    engine = make_engine(f"sqlite:///{tmp_path / name}")
    upgrade(engine)
    return make_session_factory(engine)


def _export(factory: sessionmaker[Session]) -> dict:
    with factory() as session:
        return export_document(session)


def test_yaml_and_csv_round_trips_lose_nothing(factory: sessionmaker[Session],
                                               tmp_path: Path) -> None:
    apply_registry(factory, parse_registry(HIERARCHY_YAML))
    original = _export(factory)
    assert {s["username"] for s in original["staff"]} >= {"duty-ly", "centre-hx"}
    duty = next(s for s in original["staff"] if s["username"] == "duty-ly")
    assert duty["grids"] == ["g01", "g02"]  # communities: [ly] expanded
    assert original["rosters"][0]["staff"] == ["night-g01"]

    write_yaml(original, tmp_path / "out.yaml")
    again = _fresh(tmp_path, "yaml.db")
    apply_registry(again, load_registry_file(tmp_path / "out.yaml"))
    assert _export(again) == original

    write_csv(original, tmp_path / "csv")
    with (tmp_path / "csv" / "grids.csv").open(encoding="utf-8") as grids:
        assert next(csv.reader(grids))[0] == "street_id"
    from_csv = _fresh(tmp_path, "csv.db")
    stats = apply_registry(from_csv, read_csv_folder(tmp_path / "csv"))
    assert stats["point.created"] == 2 and stats["staff.created"] == 7
    assert _export(from_csv) == original
    assert apply_registry(from_csv, read_csv_folder(tmp_path / "csv")).keys() == {
        "street.unchanged", "community.unchanged", "grid.unchanged", "point.unchanged",
        "staff.unchanged", "roster.unchanged"}


def test_csv_errors_name_file_row_and_column(tmp_path: Path) -> None:
    factory = _fresh(tmp_path, "src.db")
    apply_registry(factory, parse_registry(HIERARCHY_YAML))
    write_csv(_export(factory), tmp_path / "csv")
    points = tmp_path / "csv" / "points.csv"
    lines = points.read_text(encoding="utf-8").splitlines()
    lines[2] = lines[2].replace("g02", "g99")
    points.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        read_csv_folder(tmp_path / "csv")
    assert str(error.value).startswith(f"{points}:3: grid: ")
    assert "unknown grid 'g99'" in str(error.value)


def test_cli_import_and_export(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "server.yaml"
    config.write_text(f"database: {{url: 'sqlite:///{tmp_path / 'cli.db'}'}}\n")
    (tmp_path / "registry.yaml").write_text(HIERARCHY_YAML, encoding="utf-8")
    assert main(["import-registry", "--config", str(config), str(tmp_path / "registry.yaml"),
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["staff.created"] == 7
    assert main(["export-registry", "--config", str(config), "--format", "csv",
                 str(tmp_path / "csv")]) == 0
    assert main(["import-registry", "--config", str(config), str(tmp_path / "csv"),
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["point.unchanged"] == 2
    (tmp_path / "csv" / "staff.csv").write_text("username,name\nx,y\n", encoding="utf-8")
    assert main(["import-registry", "--config", str(config), str(tmp_path / "csv")]) == 2
    assert "missing columns" in capsys.readouterr().err
