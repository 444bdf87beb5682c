"""The checks, each independent of the others' outcome (a dead broker must not hide a
missing serial port). Every one is bounded in time."""

from __future__ import annotations

import asyncio
import email.utils
import os
import shutil
import sqlite3
import time
import urllib.error
import urllib.request
from pathlib import Path

from ..clock import probe_for
from ..config import ConfigError, GatewayConfig, load_config
from ..drivers.modbus.bus import ModbusBus, ModbusError
from ..drivers.modbus.profiles import load_modbus_profile
from ..drivers.modbus.temperature import plan_reads
from ..transport.outbox_db import FILE_NAME, LANE_TABLES
from ..transport.probe import ProbeOutcome, probe_broker
from .findings import Finding, fault, ok, skipped

CLOCK_FAULT_S = 60.0  # the server refuses messages dated ahead of its clock by a few minutes
DEVICE_TIMEOUT_S = 3.0
_URL_PORT = "://"  # rfc2217://, socket://: not a device file


def check_config(path: Path) -> tuple[Finding, GatewayConfig | None]:
    try:
        config = load_config(path)
    except ConfigError as exc:
        return fault("config", str(exc).replace("\n", "; "),
                     f"按提示修改 {path} 中的键 / fix the key named above in {path}"), None
    except OSError as exc:
        return fault("config", f"{path}: {exc}",
                     "检查配置文件路径 / check the config file's path"), None
    return ok("config", f"{path}: {len(config.devices)} devices"), config


def check_clock(server: str | None) -> Finding:
    if server is None:
        return skipped("clock", "no --server given: the clock is not compared")
    try:
        request = urllib.request.Request(server.rstrip("/") + "/healthz", method="GET")
        before = time.time()
        try:
            with urllib.request.urlopen(request, timeout=5) as answer:
                date = answer.headers.get("Date")
        except urllib.error.HTTPError as exc:  # a 503 still carries the server's Date
            date = exc.headers.get("Date")
        after = time.time()
    except (urllib.error.URLError, OSError) as exc:
        return fault("clock", f"{server}: {exc}",
                     "检查服务器地址与网络 / check the server URL and the network")
    if not date:
        return skipped("clock", f"{server} sent no Date header")
    offset = email.utils.parsedate_to_datetime(date).timestamp() - (before + after) / 2
    detail = f"offset {offset:+.1f} s against {server} (±1 s: the header has whole seconds)"
    if abs(offset) > CLOCK_FAULT_S:
        return fault("clock", detail, "校准时钟：启用 NTP（timedatectl set-ntp true）/ set the "
                     "clock: enable NTP (timedatectl set-ntp true)")
    return ok("clock", detail)


def check_pass_clock(config: GatewayConfig) -> list[Finding]:
    """Doors that take electronic passes refuse them all until the clock was synchronised
    since boot (clock.py): say so before the first resident stands at the door."""
    sources = sorted({d.pass_clock for d in config.devices if hasattr(d, "pass_clock")})
    found = []
    for source in sources:
        name = f"pass_clock:{source}"
        if probe_for(source)():
            found.append(ok(name, "clock synchronised since boot: passes are judged"))
        else:
            found.append(fault(
                name, "clock not synchronised since boot: every pass is refused (reason clock)",
                "启用 NTP（timedatectl set-ntp true）并确认已同步；无网络的网关需加装 RTC 并设 "
                "pass_clock: rtc / enable NTP (timedatectl set-ntp true) and wait for it to "
                "synchronise; a gateway without network needs an RTC and pass_clock: rtc"))
    return found


def check_disk(config: GatewayConfig) -> Finding:
    state_dir = config.gateway.state_dir
    try:
        free_mb = shutil.disk_usage(state_dir).free / 2**20
    except OSError as exc:
        return fault("disk", f"{state_dir}: {exc}",
                     "创建状态目录并赋予权限 / create the state folder, writable by the agent")
    detail = f"{free_mb:.0f} MB free at {state_dir}"
    if free_mb < config.outbox.min_free_disk_mb:
        return fault("disk", detail + f" (below outbox.min_free_disk_mb "
                     f"{config.outbox.min_free_disk_mb:g})",
                     "清理磁盘或换更大的存储卡 / free disk space or use a larger card")
    return ok("disk", detail)


def check_serial(config: GatewayConfig) -> list[Finding]:
    found = []
    for bus in config.buses:
        name = f"serial:{bus.id}"
        if _URL_PORT in bus.port:
            found.append(skipped(name, f"{bus.port} is not a device file"))
        elif not os.path.exists(bus.port):
            found.append(fault(name, f"{bus.port}: no such device",
                               "检查 USB-RS485 转换器是否插好，端口名用 /dev/serial/by-id/… / "
                               "check the RS-485 adapter is plugged in; name it by "
                               "/dev/serial/by-id/…"))
        elif not os.access(bus.port, os.R_OK | os.W_OK):
            found.append(fault(name, f"{bus.port}: no read/write permission",
                               "把运行用户加入 dialout 组（usermod -aG dialout gridsense）/ add "
                               "the agent's user to the dialout group"))
        else:
            found.append(ok(name, f"{bus.port}: present and writable"))
    return found


def check_broker(config: GatewayConfig) -> Finding:
    mqtt = config.mqtt
    password = None
    if mqtt.password_file is not None:
        password = mqtt.password_file.read_text(encoding="utf-8").strip()
    tls = mqtt.tls.context() if mqtt.tls is not None else None
    result = probe_broker(mqtt.host, mqtt.port, config.gateway.id, password, tls,
                          protocol=mqtt.protocol)
    fixes = {
        ProbeOutcome.UNREACHABLE: "检查 mqtt.host/port、网络和防火墙，代理是否在运行 / check "
                                  "mqtt.host and port, the network, the firewall, that the "
                                  "broker runs",
        ProbeOutcome.TLS: "检查 mqtt.tls 的 CA、证书与 server_name / check mqtt.tls: the CA, "
                          "the certificate, server_name",
        ProbeOutcome.REFUSED: "密码或账号不对：重新注册（gridsense-edge enroll）或核对 "
                              "mqtt.password_file / wrong password or no account: enroll "
                              "again or check mqtt.password_file",
        ProbeOutcome.NO_ANSWER: "代理无应答：检查端口是否是 MQTT 端口 / no answer: is this "
                                "port the broker's?",
    }
    if result.outcome is ProbeOutcome.OK:
        return ok("broker", f"connected and authenticated: {result.detail}")
    return fault("broker", f"{result.outcome.value}: {result.detail}", fixes[result.outcome])


def check_devices(config: GatewayConfig) -> list[Finding]:
    return asyncio.run(_devices(config))


async def _devices(config: GatewayConfig) -> list[Finding]:
    found: list[Finding] = []
    buses: dict[str, ModbusBus] = {}
    bus_configs = config.bus_map()
    try:
        for device in config.devices:
            name = f"device:{device.point}"
            if device.type != "modbus_temperature":
                found.append(skipped(name, f"{device.type}: not probed by doctor"))
                continue
            profile = load_modbus_profile(device.profile, config.profiles_folder)
            bus = buses.get(device.bus)
            if bus is None:
                bus = buses[device.bus] = ModbusBus(bus_configs[device.bus], profile.serial)
            slave = device.slave or profile.default_slave
            block = plan_reads(list(profile.registers))[0]
            try:
                words = await asyncio.wait_for(
                    bus.read(slave, block.table, block.address, block.count),
                    DEVICE_TIMEOUT_S)
            except (ModbusError, TimeoutError) as exc:
                found.append(fault(name, f"slave {slave} on {device.bus}: "
                                   f"{type(exc).__name__}: {exc}",
                                   "检查接线(A/B)、从站地址、波特率 / check the A/B wiring, the "
                                   "slave id and the baud rate"))
            else:
                found.append(ok(name, f"slave {slave} on {device.bus} answered {words}"))
    finally:
        for bus in buses.values():
            await bus.close()
    return found


def check_outbox(config: GatewayConfig) -> Finding:
    path = config.gateway.state_dir / FILE_NAME
    if not path.exists():
        return ok("outbox", "empty (no outbox yet)")
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=2) as db:
            depth = {t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                     for t in LANE_TABLES}
    except sqlite3.Error as exc:
        return fault("outbox", f"{path}: {exc}",
                     "outbox 损坏：停止代理后移走该文件 / damaged: stop the agent and move "
                     "the file away")
    return ok("outbox", ", ".join(f"{t}: {n} waiting" for t, n in depth.items()))
