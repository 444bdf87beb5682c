"""Shared by the commissioning tests: the test community with an installer who has a WeCom
app contact (their phone), and the server config that sends WeCom to the vendors' stand-ins."""

from __future__ import annotations

from pathlib import Path

from gridsense_devtools.community import REGISTRY_YAML
from gridsense_devtools.standins.server import VendorStandins

INSTALLER = """\
  - username: installer-ly
    name: 王安装
    role: installer
    grids: [g01]
    password: demo
    contacts:
      wecom: wechat://ww7c1d:app-secret@1000002/WangAnZhuang
"""
APP_ONLY_INSTALLER = """\
  - username: installer-ly
    name: 王安装
    role: installer
    grids: [g01]
    password: demo
"""


def with_installer(registry_file: Path, entry: str = INSTALLER) -> Path:
    registry_file.write_text(REGISTRY_YAML + entry, encoding="utf-8")
    return registry_file


def server_yaml(standins: VendorStandins | None, drill_timeout_s: float = 3600) -> str:
    vendors = (f'  vendors:\n    wecom: {{base_url: "{standins.base}"}}\n'
               if standins is not None else "")
    return (f"lifecycle:\n  public_url: https://gridsense.test\n{vendors}"
            f"commissioning:\n  drill_timeout_s: {drill_timeout_s}\n")
