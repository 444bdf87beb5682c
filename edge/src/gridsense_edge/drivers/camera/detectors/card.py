"""The model card: what an operator-supplied ONNX detector's input and output mean."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from gridsense_protocol.yamlconfig import load_yaml_file

from .base import DECODERS


class InputSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    width: Annotated[int, Field(ge=32, le=4096)]
    height: Annotated[int, Field(ge=32, le=4096)]
    color: Literal["rgb", "bgr"] = "rgb"
    # multiplier on 0..255 pixel values: 1/255 for YOLOv8-style exports, 1.0 for YOLOX
    scale: Annotated[float, Field(gt=0, le=1)] = 1.0 / 255.0


class ModelCard(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(min_length=1, max_length=100)]
    license: Annotated[str, Field(min_length=1)]
    format: DECODERS.config_union()  # type: ignore[valid-type]
    input: InputSpec
    labels: Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)]

    @field_validator("format", mode="before")
    @classmethod
    def _short_form(cls, value: Any) -> Any:
        return {"type": value} if isinstance(value, str) else value


def card_path(model: Path) -> Path:
    return model.with_suffix(".card.yaml")


def load_card(model: Path) -> ModelCard:
    """Raises FileNotFoundError or ConfigError (``file:line: key: problem``)."""
    path = card_path(model)
    if not path.is_file():
        raise FileNotFoundError(f"model card {path} not found (every model needs one beside it; "
                                "see models/detectors/README.md)")
    return load_yaml_file(path, ModelCard)
