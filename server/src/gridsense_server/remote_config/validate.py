"""Refuse a configuration the gateway would refuse, before anything is sent.

The schema is the gateway's own config models exported to JSON Schema (the server never
installs the gateway's package); what only the gateway can know — that a file it names exists
there, that its serial port opens — is the gateway's check, and a failure there rolls back.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import jsonschema_rs
from pydantic import TypeAdapter, ValidationError

from gridsense_protocol.gateway_config import MAX_DOCUMENT_BYTES, canonical, schema
from gridsense_protocol.messages import JsonObject

MAX_PROBLEMS = 20
_WIRE: TypeAdapter[dict[str, Any]] = TypeAdapter(JsonObject)


class InvalidConfig(ValueError):
    """Names every problem found, each as ``key.path: what is wrong``."""

    def __init__(self, gateway: str, problems: list[str]) -> None:
        super().__init__(f"config for {gateway}: " + "; ".join(problems))
        self.gateway = gateway
        self.problems = problems


@cache
def _validator() -> Any:
    return jsonschema_rs.validator_for(schema())


@cache
def _member_validator(type_name: str) -> Any | None:
    """The validator of the one device or rule model whose ``type`` is ``type_name``: a
    ``oneOf`` failure alone says nothing of which key is wrong."""
    defs = schema().get("$defs", {})
    for name, definition in defs.items():
        if definition.get("properties", {}).get("type", {}).get("const") == type_name:
            return jsonschema_rs.validator_for({"$defs": defs, "$ref": f"#/$defs/{name}"})
    return None


def _problems(document: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for error in _validator().iter_errors(document):
        where = list(error.instance_path)
        instance = error.instance
        member = (_member_validator(instance["type"]) if isinstance(instance, dict)
                  and isinstance(instance.get("type"), str) else None)
        if member is not None and "oneOf" in error.message:
            out.extend(f"{_path([*where, *inner.instance_path])}: {inner.message}"
                       for inner in member.iter_errors(instance))
        elif isinstance(instance, dict) and "oneOf" in error.message:
            out.append(f"{_path(where)}: `type` is missing or not a known type")
        else:
            out.append(f"{_path(where)}: {error.message}")
    return [p[:300] for p in out]


def _path(parts: Any) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(document)"


def check(gateway: str, document: Any) -> dict[str, Any]:
    """The document when the gateway's schema accepts it for ``gateway``; else InvalidConfig."""
    if not isinstance(document, dict):
        raise InvalidConfig(gateway, ["(document): a configuration is a mapping"])
    try:
        _WIRE.validate_python(document)  # what the config message may carry at all
    except ValidationError as exc:
        raise InvalidConfig(gateway, [f"(document): {e['msg']}" for e in exc.errors()]) from None
    size = len(canonical(document))
    if size > MAX_DOCUMENT_BYTES:
        raise InvalidConfig(gateway, [f"(document): {size} bytes, more than a gateway takes "
                                      f"({MAX_DOCUMENT_BYTES})"])
    problems = _problems(document)[:MAX_PROBLEMS]
    section = document.get("gateway")
    found = section.get("id") if isinstance(section, dict) else None
    if found is not None and found != gateway:
        problems.append(f"gateway.id: {found!r} is not {gateway!r}")
    if problems:
        raise InvalidConfig(gateway, problems)
    return document
