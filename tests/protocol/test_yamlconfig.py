"""Config errors name the file, the key path and the line."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pytest
from pydantic import BaseModel, ConfigDict

from gridsense_protocol.yamlconfig import ConfigError, load_yaml_file, validate_yaml


class Device(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["modbus"]
    slave: int


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    devices: list[Device]


GOOD = """\
name: gw
devices:
  - type: modbus
    slave: 1
"""


def test_valid_text_loads() -> None:
    assert validate_yaml(GOOD, "gw.yaml", Config).devices[0].slave == 1


def test_typo_names_file_path_and_line() -> None:
    text = GOOD + "  - type: modbus\n    slvae: 2\n"
    with pytest.raises(ConfigError) as info:
        validate_yaml(text, "gw.yaml", Config)
    message = str(info.value)
    assert "gw.yaml:6: devices[1].slvae: unknown key" in message
    assert "gw.yaml:5: devices[1].slave: Field required" in message


def test_wrong_type_names_the_line_of_the_value() -> None:
    with pytest.raises(ConfigError) as info:
        validate_yaml(GOOD.replace("slave: 1", "slave: one"), "gw.yaml", Config)
    assert info.value.problems[0][:2] == ("devices[0].slave", 4)


def test_broken_yaml_names_the_line() -> None:
    with pytest.raises(ConfigError) as info:
        validate_yaml("name: gw\ndevices: [\n  - 1\n", "gw.yaml", Config)
    assert "not valid YAML" in str(info.value)
    assert info.value.problems[0][1] is not None


def test_empty_and_missing_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    with pytest.raises(ConfigError, match="empty"):
        load_yaml_file(empty, Config)
    with pytest.raises(ConfigError, match="cannot read"):
        load_yaml_file(tmp_path / "absent.yaml", Config)
