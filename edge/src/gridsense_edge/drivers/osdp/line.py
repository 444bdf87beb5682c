"""What the OSDP driver needs besides its loop: reader profiles, key files, the serial channel,
card numbers, and the reader feedback (lock pulse, LED, buzzer) as libosdp command dicts."""

from __future__ import annotations

import contextlib
import stat
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ...configtypes import load_profile

LED_RED, LED_GREEN, LED_BLACK = 1, 2, 0
PIN_MAX_DIGITS, PIN_IDLE_S = 12, 15.0
_ENTER = {0x0D, ord("#")}  # OSDP keypad codes for '#' (and the ASCII some readers send)
_CLEAR = {0x7F, ord("*")}
# osdp_sys command ids (osdp.Command.*): fixed by libosdp's C enum, used without importing it
CMD_OUTPUT, CMD_LED, CMD_BUZZER = 1, 2, 3


class ReaderProfile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    class Inputs(BaseModel):
        model_config = ConfigDict(extra="forbid", frozen=True)
        door_contact: Annotated[int, Field(ge=0, le=31)] = 0
        request_to_exit: Annotated[int, Field(ge=0, le=31)] | None = 1

    id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.\-]{0,63}$")]
    name: str
    baudrate: Literal[9600, 19200, 38400, 57600, 115200, 230400] = 9600
    inputs: Inputs = Inputs()
    door_open_level: Literal[0, 1] = 1
    lock_output: Annotated[int, Field(ge=0, le=31)] = 0
    led_number: Annotated[int, Field(ge=0, le=31)] = 0


def osdp_profiles_dir(modbus_profiles: Path) -> Path:
    """Reader profiles live beside the Modbus ones: firmware_configs/devices/osdp."""
    return modbus_profiles.parent / "osdp"


def load_reader_profile(profile_id: str, modbus_profiles: Path) -> ReaderProfile:
    return load_profile(osdp_profiles_dir(modbus_profiles), profile_id, ReaderProfile,
                        "OSDP reader")


def read_key_file(path: Path) -> bytes:
    """A 16-byte SCBK as 32 hex digits; the file must be readable by its owner only."""
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ValueError(f"{path} is readable by group or others (mode {oct(mode & 0o777)}); "
                         f"run: chmod 600 {path}")
    text = path.read_text(encoding="ascii").strip()
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise ValueError(f"{path} does not hold a hex key") from None
    if len(key) != 16:
        raise ValueError(f"{path} holds {len(key)} bytes; an OSDP SCBK is 16 (32 hex digits)")
    return key


def card_number(event: dict[str, Any]) -> str:
    """The number a card read carries: the value of its bits (raw/Wiegand) or its text (ASCII)."""
    data: bytes = event.get("data", b"")
    if "length" in event:  # raw formats: length in bits
        bits = int(event["length"])
        value = int.from_bytes(data, "big") >> (len(data) * 8 - bits) if data else 0
        return str(value)
    return data.decode("ascii", "replace").strip()


REFRESH_S = 0.005


def start_refresh(peer: Any, period_s: float = REFRESH_S) -> None:
    """``peer.start()`` with a shorter refresh period than libosdp's fixed 20 ms.

    Every OSDP exchange costs a couple of refresh periods on each side, and a card read, its
    decision and the lock command are three of them: at 20 ms the lock moves ~190 ms after
    the card (measured), at 5 ms well under 100 ms. ``peer.stop()`` works unchanged (it uses
    the ``event``, ``lock`` and ``thread`` attributes set here).
    """
    if peer.thread:
        raise RuntimeError("refresh thread already running")
    peer.event, peer.lock = threading.Event(), threading.Lock()

    def refresh(event: threading.Event, lock: threading.Lock, ctx: Any) -> None:
        while not event.is_set():
            with lock:
                ctx.refresh()
            time.sleep(period_s)

    peer.thread = threading.Thread(name="osdp-refresh", target=refresh,
                                   args=(peer.event, peer.lock, peer.ctx), daemon=True)
    peer.thread.start()


@dataclass
class Keypad:
    """Collects keypad digits into a PIN: '#' submits, '*' clears, a pause forgets them."""

    digits: bytearray = field(default_factory=bytearray)
    last: float = 0.0

    def feed(self, data: bytes, now: float) -> list[str]:
        if self.digits and now - self.last > PIN_IDLE_S:
            self.digits.clear()
        self.last = now
        pins = []
        for key in data:
            if key in _ENTER:
                if self.digits:
                    pins.append(self.digits.decode("ascii"))
                    self.digits = bytearray()
            elif key in _CLEAR:
                self.digits.clear()
            elif 0x30 <= key <= 0x39 and len(self.digits) < PIN_MAX_DIGITS:
                self.digits.append(key)
        return pins


class SerialChannel:
    """libosdp's Channel over pyserial; non-blocking (timeout 0) on libosdp's thread."""

    def __init__(self, port: str, baudrate: int, counters: dict[str, int]) -> None:
        import serial

        self._serial = serial.Serial(port, baudrate=baudrate, timeout=0, write_timeout=0)
        self._counters = counters
        self.broken = False

    def read(self, max_bytes: int) -> bytes:
        try:
            return bytes(self._serial.read(max_bytes))
        except Exception:  # the adapter went away; the driver reopens the port
            self._counters["serial_errors"] += 1
            self.broken = True
            return b""

    def write(self, buf: bytes) -> int:
        try:
            return int(self._serial.write(buf) or 0)
        except Exception:
            self._counters["serial_errors"] += 1
            self.broken = True
            return 0

    def flush(self) -> None:
        return None

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._serial.close()


def _led(profile: ReaderProfile, color: int, tenths: int) -> dict[str, Any]:
    return {"command": CMD_LED, "reader": 0, "led_number": profile.led_number,
            "temporary": True, "control_code": 2, "on_color": color, "off_color": LED_BLACK,
            "on_count": 10, "off_count": 0, "timer_count": tenths}


def grant_commands(profile: ReaderProfile, unlock_s: float) -> list[dict[str, Any]]:
    """Lock first (what the person waits for), then green and one beep."""
    tenths = min(255, round(unlock_s * 10))
    return [
        # control code 5: temporary on for timer_count x 100 ms, then the permanent state
        {"command": CMD_OUTPUT, "output_no": profile.lock_output, "control_code": 5,
         "timer_count": tenths},
        _led(profile, LED_GREEN, tenths),
        {"command": CMD_BUZZER, "reader": 0, "control_code": 2, "on_count": 2,
         "off_count": 1, "rep_count": 1},
    ]


def deny_commands(profile: ReaderProfile) -> list[dict[str, Any]]:
    """Red for two seconds and three short beeps; the lock is not touched."""
    return [
        _led(profile, LED_RED, 20),
        {"command": CMD_BUZZER, "reader": 0, "control_code": 2, "on_count": 1,
         "off_count": 1, "rep_count": 3},
    ]
