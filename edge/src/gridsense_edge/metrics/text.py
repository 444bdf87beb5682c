"""The Prometheus text exposition format (version 0.0.4), written by hand.

prometheus-client is not used on the gateway: imported into a bare interpreter it costs about
15 MiB resident and 0.7 s, and the format is small and stable — ``# HELP`` and ``# TYPE`` lines,
then one ``name{label="value"} number`` line per sample.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

Labels = tuple[tuple[str, str], ...]


@dataclass
class Family:
    name: str
    kind: str  # counter | gauge | untyped
    help: str
    samples: list[tuple[Labels, float]] = field(default_factory=list)

    def add(self, value: float, **labels: str) -> Family:
        self.samples.append((tuple(labels.items()), value))
        return self


def _label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(int(value)) if float(value).is_integer() else repr(float(value))


def render(families: Iterable[Family]) -> bytes:
    """The text page; a counter's samples get the ``_total`` suffix, as Prometheus expects."""
    lines: list[str] = []
    for family in families:
        sample_name = f"{family.name}_total" if family.kind == "counter" else family.name
        lines.append(f"# HELP {sample_name} {_help(family.help)}")
        lines.append(f"# TYPE {sample_name} {family.kind}")
        for labels, value in family.samples:
            text = ",".join(f'{key}="{_label_value(val)}"' for key, val in labels)
            lines.append(f"{sample_name}{{{text}}} {_number(value)}" if text
                         else f"{sample_name} {_number(value)}")
    return ("\n".join(lines) + "\n").encode()
