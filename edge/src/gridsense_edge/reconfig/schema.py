"""Export the gateway config's JSON Schema, which the server validates pushed versions with.

    python -m gridsense_edge.reconfig.schema \
        > protocol/src/gridsense_protocol/schemas/gateway_config.json
"""

from __future__ import annotations

import json
import sys
from typing import Any

from ..config import GatewayConfig


def export() -> dict[str, Any]:
    return GatewayConfig.model_json_schema()


def render() -> str:
    return json.dumps(export(), indent=1, sort_keys=True, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
