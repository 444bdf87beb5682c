"""Field types and the validation context shared by config.py and the plugin config models."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, Field, ValidationInfo

from gridsense_protocol.topics import ID_PATTERN
from gridsense_protocol.yamlconfig import load_yaml_file

M = TypeVar("M", bound=BaseModel)

BASE_DIR = "base_dir"  # folder of the config file: relative paths resolve against it
PROFILES_DIR = "profiles_dir"
BUS_IDS = "bus_ids"
POINTS_SEEN = "points_seen"
PROFILE_CACHE = "profile_cache"
STATE_DIR = "state_dir"  # the gateway's state folder, for plugins that keep state on disk


def context_of(info: ValidationInfo) -> dict[str, Any]:
    """The shared context dict, or an empty one when a model is validated on its own."""
    return info.context if isinstance(info.context, dict) else {}


def resolve_path(value: Path, info: ValidationInfo) -> Path:
    value = value.expanduser()
    if value.is_absolute():
        return value
    base = context_of(info).get(BASE_DIR)
    return (Path(base) / value) if base is not None else value.absolute()


ResolvedPath = Annotated[Path, AfterValidator(resolve_path)]
Identifier = Annotated[str, Field(pattern=f"^{ID_PATTERN}$")]
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]


def default_profiles_dir() -> Path:
    """firmware_configs/devices/modbus in a checkout; /usr/share/gridsense on an installed Pi."""
    checkout = Path(__file__).resolve().parents[3] / "firmware_configs" / "devices" / "modbus"
    if checkout.is_dir():
        return checkout
    return Path("/usr/share/gridsense/firmware_configs/devices/modbus")


def load_profile(folder: Path, profile_id: str, model: type[M], what: str) -> M:
    """A device profile ``folder/<id>.yaml``; a missing one names the profiles there are."""
    path = folder / f"{profile_id}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []
        raise ValueError(f"no {what} profile {profile_id!r} in {folder} "
                         f"(known: {', '.join(known) or 'none'})")
    return load_yaml_file(path, model)
