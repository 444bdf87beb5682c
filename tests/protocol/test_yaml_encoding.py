"""A config saved in GBK (a Chinese Windows editor's default) is named as such, never a traceback;
a UTF-8 file with the BOM those editors add loads."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict

from gridsense_protocol.yamlconfig import ConfigError, load_yaml_file, read_config_text


class Site(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str


def test_gbk_is_named_with_the_file_and_the_line(tmp_path: Path) -> None:
    path = tmp_path / "site.yaml"
    path.write_bytes("# 网格配置\nname: 1号楼锅炉房\n".encode("gbk"))
    with pytest.raises(ConfigError) as info:
        load_yaml_file(path, Site)
    message = str(info.value)
    assert message.startswith(f"{path}:1: ")
    assert "not UTF-8 text (saved as GBK?)" in message and "GBK" in message


def test_the_line_is_that_of_the_first_bad_byte(tmp_path: Path) -> None:
    path = tmp_path / "site.yaml"
    path.write_bytes(b"# ascii\n# ascii\n" + "name: 水泵房\n".encode("gbk"))
    with pytest.raises(ConfigError) as info:
        read_config_text(path)
    assert info.value.problems[0][1] == 3


def test_utf8_with_a_bom_loads(tmp_path: Path) -> None:
    path = tmp_path / "site.yaml"
    path.write_bytes("\ufeffname: 1号楼锅炉房\n".encode())
    assert load_yaml_file(path, Site).name == "1号楼锅炉房"
