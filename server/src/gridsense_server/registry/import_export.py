"""Registry import and export: the YAML registry file, or a folder of CSV files.

The CSV layout is in docs/operations.md; an import error names ``file:row: column``.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from gridsense_protocol.yamlconfig import ConfigError, read_config_text

from ..db.models import Community, Grid, Point, Roster, Staff, StaffGrid, Street
from .registry_file import RegistryFile, _context, load_registry_file

FILES = {
    "grids": ["street_id", "street_name", "community_id", "community_name", "grid_id",
              "grid_name", "parent_id", "contacts"],
    "points": ["id", "gateway", "grid", "name", "location"],
    "staff": ["username", "name", "role", "grids", "communities", "streets", "contacts",
              "password_hash"],
    "rosters": ["id", "grid", "role", "starts", "ends", "staff"],
}


# -- export --------------------------------------------------------------------------------------

def export_document(session: Session) -> dict[str, Any]:
    """The registry as the YAML file's structure."""
    grids = list(session.scalars(select(Grid).order_by(Grid.id)))
    children: dict[str, list[Grid]] = {}
    for grid in grids:
        if grid.parent_id is not None:
            children.setdefault(grid.parent_id, []).append(grid)
    by_community: dict[str, list[Grid]] = {}
    for grid in grids:
        if grid.parent_id is None:
            by_community.setdefault(grid.community_id, []).append(grid)
    communities: dict[str, list[Community]] = {}
    for community in session.scalars(select(Community).order_by(Community.id)):
        communities.setdefault(community.street_id, []).append(community)

    def grid_doc(grid: Grid, micro: bool) -> dict[str, Any]:
        doc: dict[str, Any] = {"id": grid.id, "name": grid.name}
        if not micro:
            doc["micro_grids"] = [grid_doc(m, True) for m in children.get(grid.id, [])]
        if grid.contacts:
            doc["contacts"] = grid.contacts
        return doc

    owned: dict[str, list[str]] = {}
    for username, grid_id in session.execute(
            select(StaffGrid.username, StaffGrid.grid_id).order_by(StaffGrid.grid_id)):
        owned.setdefault(username, []).append(grid_id)
    return {
        "streets": [{"id": s.id, "name": s.name, "communities": [
            {"id": c.id, "name": c.name,
             "grids": [grid_doc(g, False) for g in by_community.get(c.id, [])]}
            for c in communities.get(s.id, [])]}
            for s in session.scalars(select(Street).order_by(Street.id))],
        "points": [{"id": p.id, "gateway": p.gateway, "grid": p.grid_id, "name": p.name,
                    **({"location": p.location} if p.location else {})}
                   for p in session.scalars(select(Point).order_by(Point.id))],
        # Grid ownership is exported as the expanded grid list (communities: / streets: are a
        # way of writing it, not stored separately).
        "staff": [{"username": s.username, "name": s.name, "role": s.role,
                   "grids": owned.get(s.username, []), "password_hash": s.password_hash,
                   **({"contacts": s.contacts} if s.contacts else {})}
                  for s in session.scalars(select(Staff).order_by(Staff.username))],
        "rosters": [{"id": r.id, "grid": r.grid_id, "role": r.role, "starts": r.starts,
                     "ends": r.ends, "staff": list(r.usernames)}
                    for r in session.scalars(select(Roster).order_by(Roster.id))],
    }


def write_yaml(document: dict[str, Any], path: Path) -> None:
    path.write_text(yaml.safe_dump(document, allow_unicode=True, sort_keys=False,
                                   width=120), encoding="utf-8")


def _contacts_text(contacts: dict[str, str] | None) -> str:
    return " ".join(f"{k}={v}" for k, v in (contacts or {}).items())


def write_csv(document: dict[str, Any], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rows: dict[str, list[list[str]]] = {name: [] for name in FILES}
    for street in document["streets"]:
        for community in street["communities"]:
            for grid in community["grids"]:
                for g, parent in [(grid, ""), *((m, grid["id"]) for m in grid["micro_grids"])]:
                    rows["grids"].append([street["id"], street["name"], community["id"],
                                          community["name"], g["id"], g["name"], parent,
                                          _contacts_text(g.get("contacts"))])
    rows["points"] = [[p["id"], p["gateway"], p["grid"], p["name"], p.get("location") or ""]
                      for p in document["points"]]
    rows["staff"] = [[s["username"], s["name"], s["role"], " ".join(s["grids"]), "", "",
                      _contacts_text(s.get("contacts")), s["password_hash"]]
                     for s in document["staff"]]
    rows["rosters"] = [[r["id"], r["grid"], r["role"], r["starts"], r["ends"],
                        " ".join(r["staff"])] for r in document["rosters"]]
    for name, header in FILES.items():
        with (folder / f"{name}.csv").open("w", encoding="utf-8", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(header)
            writer.writerows(rows[name])


# -- import --------------------------------------------------------------------------------------

def _read(folder: Path, name: str) -> list[dict[str, str]]:
    path = folder / f"{name}.csv"
    if not path.exists():
        return []
    # Excel on a Chinese Windows saves CSV as GBK: the shared reader says so instead of a traceback.
    reader = csv.DictReader(io.StringIO(read_config_text(path), newline=""))
    missing = [c for c in FILES[name] if c not in (reader.fieldnames or [])]
    if missing:
        raise ConfigError(str(path), [("header", 1, f"missing columns {missing}")])
    return list(reader)


def _contacts(text: str) -> dict[str, str]:
    return dict(pair.split("=", 1) for pair in text.split()) if text.strip() else {}


def _words(text: str) -> list[str]:
    return text.split()


def read_csv_folder(folder: Path) -> RegistryFile:
    """Build and validate a registry from ``folder``; ConfigError names file:row: column."""
    rows = {name: _read(folder, name) for name in FILES}
    streets: dict[str, dict[str, Any]] = {}
    communities: dict[str, dict[str, Any]] = {}
    grids: dict[str, dict[str, Any]] = {}
    for line, row in enumerate(rows["grids"], start=2):
        street = streets.setdefault(row["street_id"], {
            "id": row["street_id"], "name": row["street_name"], "communities": []})
        community = communities.get(row["community_id"])
        if community is None:
            community = communities[row["community_id"]] = {
                "id": row["community_id"], "name": row["community_name"], "grids": []}
            street["communities"].append(community)
        grid: dict[str, Any] = {"id": row["grid_id"], "name": row["grid_name"]}
        if row["contacts"].strip():
            grid["contacts"] = _contacts(row["contacts"])
        if row["parent_id"]:
            parent = grids.get(row["parent_id"])
            if parent is None:
                raise ConfigError(str(folder / "grids.csv"), [(
                    "parent_id", line, f"grid {row['parent_id']!r} must come on an earlier row")])
            parent.setdefault("micro_grids", []).append(grid)
        else:
            community["grids"].append(grid)
            grids[row["grid_id"]] = grid
    document: dict[str, Any] = {
        "streets": list(streets.values()),
        "points": [{k: v for k, v in row.items() if k in FILES["points"] and
                    (v or k != "location")} for row in rows["points"]],
        "staff": [{"username": r["username"], "name": r["name"], "role": r["role"],
                   "grids": _words(r["grids"]), "communities": _words(r["communities"]),
                   "streets": _words(r["streets"]), "contacts": _contacts(r["contacts"]),
                   "password_hash": r["password_hash"]} for r in rows["staff"]],
        "rosters": [{**{k: r[k] for k in ("id", "grid", "role", "starts", "ends")},
                     "staff": _words(r["staff"])} for r in rows["rosters"]],
    }
    try:
        return RegistryFile.model_validate(document, context=_context())
    except ValidationError as exc:
        # Errors of the first file that has any, as file:row: column (row 1 is the header).
        by_file: dict[str, list[tuple[str, int | None, str]]] = {}
        for error in exc.errors():
            loc = error["loc"]
            if loc and loc[0] in ("points", "staff", "rosters") and len(loc) > 1:
                column = ".".join(str(p) for p in loc[2:3]) or "row"
                by_file.setdefault(f"{loc[0]}.csv", []).append(
                    (column, int(loc[1]) + 2, error["msg"]))
            else:
                by_file.setdefault("grids.csv", []).append(
                    (".".join(str(p) for p in loc), None, error["msg"]))
        name, problems = next(iter(by_file.items()))
        raise ConfigError(str(folder / name), problems) from None


def read_any(path: Path) -> RegistryFile:
    """A YAML registry file, or a folder of CSV files."""
    return read_csv_folder(path) if path.is_dir() else load_registry_file(path)
