"""docs/protocol.md is part of the contract: every example on it must decode as it says."""

from __future__ import annotations

import re
from pathlib import Path

from gridsense_protocol import Kind, decode, parse_topic

DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
EXAMPLE = re.compile(r"Topic: `(?P<topic>[^`]+)`[^\n]*\n\n```json\n(?P<body>.*?)\n```", re.S)


def test_every_json_topic_has_a_decodable_example() -> None:
    examples = list(EXAMPLE.finditer(DOC.read_text(encoding="utf-8")))
    seen = set()
    for match in examples:
        message = decode(match["topic"], match["body"].encode())
        assert message.gateway == parse_topic(match["topic"]).gateway
        seen.add(parse_topic(match["topic"]).kind)
    assert seen == set(Kind) - {Kind.SNAPSHOT}
