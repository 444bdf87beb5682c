"""The test community: registries for the server's tests, benches and end-to-end runs, and a
fast escalation policy (every account's password is ``demo`` unless a registry says so)."""

from __future__ import annotations

# In-process server tests: boilers in two grids and a pump, three accounts with their own
# passwords.
REGISTRY_YAML = """\
streets:
  - id: hx
    name: 湖西街道
    communities:
      - id: ly
        name: 莲园社区
        grids:
          - id: g01
            name: 第一网格
            micro_grids:
              - {id: g01-a, name: 1-3号楼}
          - id: g02
            name: 第二网格
points:
  - id: gw-01.boiler
    gateway: gw-01
    grid: g01-a
    name: 1号楼锅炉房
    location: 1号楼 B1
  - id: gw-01.pump
    gateway: gw-01
    grid: g01
    name: 水泵房
  - id: gw-02.boiler
    gateway: gw-02
    grid: g02
    name: 2号楼锅炉房
staff:
  - username: worker-g01
    name: 张伟
    role: worker
    grids: [g01]
    password: demo
  - username: worker-g02
    name: 李娜
    role: worker
    grids: [g02]
    password: demo2
  - username: control
    name: 监控中心
    role: control
    password: ctl
"""

# The whole hierarchy, every role and a night roster: the lifecycle tests and benches.
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


def registry_yaml(points: dict[str, tuple[str, str]]) -> str:
    """The tests' standard community — grids g01 and g02, one micro-grid each (g01-a, g02-a),
    staff control / worker-g01 / worker-g02 (password ``demo``) — with ``points`` as
    ``{point id: (gateway, grid)}``."""
    point_lines = "\n".join(
        f"  - {{id: {point}, gateway: {gateway}, grid: {grid}, name: {point}, location: B1}}"
        for point, (gateway, grid) in points.items()
    )
    return f"""
streets:
  - id: hx
    name: 湖西街道
    communities:
      - id: ly
        name: 莲园社区
        grids:
          - {{id: g01, name: 第一网格, micro_grids: [{{id: g01-a, name: 1号楼}}]}}
          - {{id: g02, name: 第二网格, micro_grids: [{{id: g02-a, name: 8号楼}}]}}
points:
{point_lines}
staff:
  - {{username: control, name: 指挥室, role: control, grids: [], password: demo}}
  - {{username: worker-g01, name: 张伟, role: worker, grids: [g01], password: demo}}
  - {{username: worker-g02, name: 李娜, role: worker, grids: [g02], password: demo}}
"""
