"""The osdp_reader config: the example validates, keys must be private, errors name the key."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from gridsense_edge.config import ConfigError, load_config

EXAMPLE = Path(__file__).resolve().parents[3] / "firmware_configs" / "gateways" / (
    "example-entrance.yaml")


def _copy_example(tmp_path: Path, mode: int = 0o600) -> Path:
    config = tmp_path / EXAMPLE.name
    shutil.copy(EXAMPLE, config)
    (tmp_path / "keys").mkdir()
    for name in ("gw-b3-entrance-out", "gw-b3-entrance-in"):
        key = tmp_path / "keys" / f"{name}.key"
        key.write_text(os.urandom(16).hex())
        os.chmod(key, mode)
    return config


def test_example_entrance_validates(tmp_path: Path) -> None:
    config = load_config(_copy_example(tmp_path))
    assert [d.type for d in config.devices] == ["osdp_reader", "osdp_reader"]
    assert {d.door_id for d in config.devices} == {"b3-east"}


def test_a_key_others_can_read_is_refused_with_file_and_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(_copy_example(tmp_path, mode=0o644))
    text = str(info.value)
    assert "devices[0].key_file" in text and "chmod 600" in text and ".yaml:" in text


def test_two_readers_with_one_address_on_one_line_are_refused(tmp_path: Path) -> None:
    config = _copy_example(tmp_path)
    config.write_text(config.read_text().replace("address: 2", "address: 1"))
    with pytest.raises(ConfigError, match=r"devices\[1\]\.address.*address 1 is used"):
        load_config(config)


def test_an_unknown_reader_profile_lists_the_known_ones(tmp_path: Path) -> None:
    config = _copy_example(tmp_path)
    config.write_text(config.read_text().replace("profile: generic-reader", "profile: nope"))
    with pytest.raises(ConfigError, match="generic-reader"):
        load_config(config)
