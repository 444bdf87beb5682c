"""The draft gateway configuration a discovery run proposes, checked by the config models.

What discovery cannot complete on its own — a sensor with no profile yet, an OSDP reader whose
key file is not on the gateway, a camera without a detector model — goes into the YAML as
commented entries, so the draft itself always passes ``check-config``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..config import ConfigError, GatewayConfig, load_config
from ..configtypes import default_profiles_dir
from .cameras import CameraProbe
from .modbus_scan import UNKNOWN, ModbusScan
from .osdp_scan import OsdpScan

DRAFT_NAME = "gateway.draft.yaml"


@dataclass
class Draft:
    config: dict[str, Any]
    pending: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (why, entry)
    # A pending sensor's point -> the profiles its answers fit: the installer picks one.
    choices: dict[str, list[str]] = field(default_factory=dict)

    def to_yaml(self) -> str:
        header = ("# 设备发现生成的网关配置草稿 / Draft gateway configuration from "
                  "`gridsense-edge discover`.\n# 检查 / check: gridsense-edge check-config "
                  "--config <this file>\n")
        body = yaml.safe_dump(self.config, allow_unicode=True, sort_keys=False)
        if not self.pending:
            return header + body
        lines = ["", "# 待补全的设备 / devices to complete, then move under `devices:` —"]
        for why, entry in self.pending:
            lines.append(f"# {why}")
            dumped = yaml.safe_dump([entry], allow_unicode=True, sort_keys=False)
            lines.extend(f"#   {line}" for line in dumped.splitlines())
        return header + body + "\n".join(lines) + "\n"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-.").lower() or "x"


def build_draft(base: GatewayConfig | None, gateway_id: str, modbus: list[ModbusScan],
                osdp: list[OsdpScan], cameras: list[CameraProbe],
                profiles_dir: Path | None = None) -> Draft:
    if base is not None:
        gateway_id = base.gateway.id
        config: dict[str, Any] = {
            "gateway": {"id": gateway_id, "state_dir": str(base.gateway.state_dir)},
            "mqtt": base.mqtt.model_dump(mode="json", exclude_defaults=True),
        }
        if not config["mqtt"]:
            del config["mqtt"]
    else:
        config = {"gateway": {"id": gateway_id, "state_dir": f"./state/{gateway_id}"}}
    if profiles_dir is not None and profiles_dir.absolute() != default_profiles_dir():
        config["profiles_dir"] = str(profiles_dir.absolute())
    draft = Draft(config)
    buses: list[dict[str, Any]] = []
    devices: list[dict[str, Any]] = []
    for number, scan in enumerate(s for s in modbus if s.found):
        bus_id = f"rs485-{number}"
        buses.append({"id": bus_id, "port": scan.port, "baudrate": scan.serial.baudrate,
                      "parity": scan.serial.parity, "stopbits": scan.serial.stopbits})
        for slave in scan.found:
            entry = {"type": "modbus_temperature", "point": f"{gateway_id}.{bus_id}-{slave.slave}",
                     "bus": bus_id, "slave": slave.slave}
            if slave.profile is not None:
                devices.append({**entry, "profile": slave.profile})
            elif slave.answer == "garbled":
                draft.pending.append((f"slave {slave.slave} on {scan.port}: {slave.detail}",
                                      {**entry, "profile": "?"}))
            else:
                hint = f" (answers like: {', '.join(slave.candidates)})" if slave.candidates else ""
                draft.pending.append((f"slave {slave.slave} on {scan.port}: {UNKNOWN}{hint}",
                                      {**entry, "profile": slave.candidates[0]
                                       if slave.candidates else "?"}))
                draft.choices[entry["point"]] = list(slave.candidates)
    for scan in osdp:
        for reader in scan.found:
            point = f"{gateway_id}.door-{reader.address}"
            draft.pending.append((
                f"OSDP reader {reader.address} on {scan.port} (vendor {reader.vendor_code:06X}, "
                f"serial {reader.serial_number:08X}): 需要该读卡器的密钥文件 / needs its key "
                f"file (the SCBK set on the reader, chmod 600)",
                {"type": "osdp_reader", "point": point, "port": scan.port,
                 "address": reader.address, "key_file": f"keys/{_slug(point)}.key"}))
    for number, camera in enumerate(c for c in cameras if c.ok):
        draft.pending.append((
            f"camera {number} ({camera.width}x{camera.height}): 需要检测模型 / needs a detector "
            f"model (ONNX with its card)",
            {"type": "camera", "point": f"{gateway_id}.camera-{number}", "source": camera.source,
             "resolution": [camera.width, camera.height],
             "detector": {"model": "models/detector.onnx"}}))
    if buses:
        config["buses"] = buses
    if devices:
        config["devices"] = devices
    return draft


def write_and_check(draft: Draft, folder: Path) -> tuple[Path, ConfigError | None]:
    """Write the draft and load it the way `run` would: relative paths from its folder."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / DRAFT_NAME
    # 0600: a camera URL in it may carry the camera's password.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an older draft made with other modes
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(draft.to_yaml())
    try:
        load_config(path)
    except ConfigError as exc:
        return path, exc
    return path, None
