"""The schema the server validates pushed configs with is the gateway's own models, exported:
the copy in the protocol package must never drift from them."""

from __future__ import annotations

from importlib import resources

from gridsense_edge.reconfig.schema import render
from gridsense_protocol.gateway_config import canonical, config_hash, schema, split_document


def test_the_protocol_copy_of_the_schema_is_the_models_export() -> None:
    text = render()
    kept = resources.files("gridsense_protocol").joinpath("schemas/gateway_config.json")
    assert kept.read_text(encoding="utf-8") == text, (
        "run: python -m gridsense_edge.reconfig.schema > "
        "protocol/src/gridsense_protocol/schemas/gateway_config.json")
    assert "OverTemperatureConfig" in schema()["$defs"]


def test_hash_ignores_key_order_and_parts_rebuild_the_document() -> None:
    document = {"b": ["温度", 1.5], "a": {"y": None, "x": "阈值" * 50}}
    assert config_hash(document) == config_hash({"a": {"x": "阈值" * 50, "y": None},
                                                 "b": ["温度", 1.5]})
    parts = split_document(document, budget=64)
    assert len(parts) > 1 and all(len(p.encode()) <= 64 for p in parts)
    assert "".join(parts).encode() == canonical(document)
    assert split_document(document) == [canonical(document).decode()]
