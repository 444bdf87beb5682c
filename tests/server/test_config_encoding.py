"""GBK in every file a person edits — the server config, the registry (YAML, or CSV from Excel)
and the gateway config — gives ``file: not UTF-8 text (saved as GBK?)`` through the real
loaders, and the server CLI prints it instead of a traceback."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from gridsense_devtools.processes import BIN, env_without_proxies
from gridsense_edge.config import load_config
from gridsense_protocol.yamlconfig import ConfigError
from gridsense_server.config import load_server_config
from gridsense_server.registry.import_export import read_any

GBK_HINT = "not UTF-8 text (saved as GBK?)"


def _gbk(path: Path, text: str) -> Path:
    path.write_bytes(text.encode("gbk"))
    return path


def test_server_config_in_gbk(tmp_path: Path) -> None:
    path = _gbk(tmp_path / "server.yaml", "# 服务器配置\nhttp: {port: 8080}\n")
    with pytest.raises(ConfigError, match=r"server\.yaml:1: .*saved as GBK"):
        load_server_config(path)


def test_server_cli_says_so_without_a_traceback(tmp_path: Path) -> None:
    path = _gbk(tmp_path / "server.yaml", "# 服务器配置\nhttp: {port: 8080}\n")
    result = subprocess.run([str(BIN / "gridsense-server"), "migrate", "--config", str(path)],
                            capture_output=True, text=True, timeout=120, check=False,
                            env=env_without_proxies())
    assert result.returncode != 0
    assert f"{path}:1: " in result.stderr and GBK_HINT in result.stderr
    assert "Traceback" not in result.stderr


def test_registry_yaml_in_gbk(tmp_path: Path) -> None:
    path = _gbk(tmp_path / "registry.yaml", "streets:\n  - {id: hx, name: 花溪街道}\n")
    with pytest.raises(ConfigError, match=r"registry\.yaml:2: .*saved as GBK"):
        read_any(path)


def test_registry_csv_from_excel_in_gbk(tmp_path: Path) -> None:
    folder = tmp_path / "registry"
    folder.mkdir()
    _gbk(folder / "grids.csv", "street_id,street_name\nhx,花溪街道\n")
    with pytest.raises(ConfigError) as info:
        read_any(folder)
    assert str(info.value).startswith(f"{folder / 'grids.csv'}:2: ")
    assert GBK_HINT in str(info.value)


def test_gateway_config_in_gbk(tmp_path: Path) -> None:
    path = _gbk(tmp_path / "gateway.yaml", "gateway:\n  id: gw-01  # 1号楼\n")
    with pytest.raises(ConfigError, match=r"gateway\.yaml:2: .*saved as GBK"):
        load_config(path)
