"""Message catalogues: what the user reads, per language (zh-CN first), as JSON files served
to the web page; the codes they translate (types, states, roles...) stay in the API."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

LANGUAGES = ("zh-CN", "en")
DEFAULT_LANGUAGE = "zh-CN"
_FOLDER = Path(__file__).resolve().parent


@dataclass(frozen=True, slots=True)
class Catalogue:
    language: str
    messages: dict[str, Any]
    body: bytes  # as served
    etag: str


@cache
def catalogue(language: str) -> Catalogue:
    """The catalogue of a language in LANGUAGES (KeyError otherwise); read once."""
    if language not in LANGUAGES:
        raise KeyError(language)
    messages = json.loads((_FOLDER / f"{language}.json").read_text(encoding="utf-8"))
    body = json.dumps({"language": language, **messages}, ensure_ascii=False,
                      separators=(",", ":")).encode()
    return Catalogue(language, messages, body, f'"{hashlib.sha256(body).hexdigest()[:32]}"')
