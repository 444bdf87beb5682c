"""QR scanners mounted at an OSDP reader's door: a serial-mode scanner on a pseudo-terminal and
a keyboard-mode scanner whose key events are replayed through a FIFO. Each pass is decided at
the reader's door: real libosdp readers answer with the lock and LED, real SQLite keeps the
copy and the use counts."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import tty
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from osdp_support import SITE_KEY, Harness, osdp_rig, resident, run_bus, stop_bus
from pass_support import forged, make_pass, pass_keys, record, signed

from gridsense_edge.clock import ClockTrust
from gridsense_edge.config import load_config
from gridsense_edge.drivers.base import DriverContext
from gridsense_edge.drivers.osdp.sync import AccessSync
from gridsense_edge.drivers.qrscan.config import QrHidConfig, QrSerialConfig
from gridsense_edge.drivers.qrscan.hid_scanner import HidScanner
from gridsense_edge.drivers.qrscan.keymap import INPUT_EVENT, KeyDecoder, encode_text
from gridsense_edge.drivers.qrscan.serial_scanner import SerialScanner
from gridsense_edge.events import AccessRecord
from gridsense_protocol import Command, utc_now
from gridsense_protocol.yamlconfig import ConfigError

LED_RED = 1


def sync(h: Harness, seq: int, **args: object) -> None:
    reply = AccessSync(h.store).handle(
        Command(gateway="gw", seq=seq, ts=utc_now(), name="access_sync", args=args))
    assert reply is not None and reply.ok, reply


def context_of(h: Harness) -> DriverContext:
    return h.bus.context


def now_pass(**changes: object) -> object:
    now = int(time.time())
    fields: dict[str, object] = {"not_before": now - 60, "not_after": now + 3600}
    fields.update(changes)
    return make_pass(**fields)


def passes_recorded(h: Harness) -> list[AccessRecord]:
    return [r for r in h.records if r.method == "pass"]


@contextlib.asynccontextmanager
async def running(h: Harness, scanner: SerialScanner | HidScanner) -> AsyncIterator[None]:
    bus = await run_bus(h)
    task = asyncio.create_task(scanner.run())
    try:
        await h.until(lambda: scanner.connected)
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await stop_bus(bus)


async def check_decisions(h: Harness, send: object) -> None:
    """The same passes through any scanner: each decision, the lock only for the grant."""
    once = now_pass(uses=1)
    gone = now_pass(uses=0)
    expired = make_pass(not_before=int(time.time()) - 7200, not_after=int(time.time()) - 3600)
    elsewhere = now_pass(doors=("b5-west",))
    early = make_pass(not_before=int(time.time()) + 3600, not_after=int(time.time()) + 7200)
    sync(h, 1, mode="snapshot", version=1, secret=SITE_KEY.hex(),
         credentials=[[c.id, c.card, c.pin, None, None, list(c.doors), []]
                      for c in (resident("alice", card="100200"),)],
         pass_keys=pass_keys(), passes=[record(p) for p in (once, gone, expired, elsewhere, early)])
    since = time.monotonic()
    await send(signed(once))  # type: ignore[operator]
    await h.until(lambda: len(passes_recorded(h)) == 1)
    granted = passes_recorded(h)[0]
    assert (granted.point, granted.result.value, granted.pass_id, granted.credential) == (
        "gw.door1", "granted", once.pass_id, "alice")
    lock = await h.command(lambda c: c.address == 1 and c.name == "output", 10, since)
    assert lock is not None
    sync(h, 2, mode="delta", base=1, version=2, revoked_passes=[gone.pass_id])
    since = time.monotonic()
    expected = [(signed(once), "used_up"), (signed(gone), "revoked"),
                (signed(expired), "expired"), (signed(early), "not_yet_valid"),
                (signed(elsewhere), "door_not_allowed"), (forged(now_pass()), "forged")]
    for n, (text, _) in enumerate(expected, start=2):
        await send(text)  # type: ignore[operator]
        await h.until(lambda n=n: len(passes_recorded(h)) == n)
    assert [(r.result.value, r.reason) for r in passes_recorded(h)[1:]] == [
        ("denied", reason) for _, reason in expected]
    assert await h.command(lambda c: c.name == "output", 0.5, since) is None
    red = await h.command(lambda c: c.name == "led" and c.args["on_color"] == LED_RED, 5, since)
    assert red is not None and red.address == 1
    assert h.incident_states("repeated_denied") == [("gw.door1", "active")]


def decisions_logged(caplog: pytest.LogCaptureFixture, via: str) -> list[tuple[object, ...]]:
    """The gateway log's access_decision lines for passes from one scanner."""
    fields = [r.__dict__["gridsense_fields"] for r in caplog.records
              if r.getMessage() == "access_decision"]
    return [(f["granted"], f["reason"], f["pass_id"]) for f in fields
            if f.get("via") == via]


async def test_a_serial_scanner_on_a_pseudo_terminal(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="gridsense_edge.drivers.osdp.driver")
    master, slave = os.openpty()
    tty.setraw(master)
    tty.setraw(slave)
    path = os.ttyname(slave)
    with osdp_rig(tmp_path, addresses=(1,), clock=ClockTrust("rtc")) as h:
        config = QrSerialConfig(type="qr_serial", point="gw.qr1", port=path, door="b3-east")
        scanner = SerialScanner(config, context_of(h))

        async def send(text: str) -> None:
            os.write(master, text.encode() + b"\r")

        try:
            async with running(h, scanner):
                await check_decisions(h, send)
                logged = decisions_logged(caplog, "gw.qr1")
                assert [(g, r) for g, r, _ in logged] == [
                    (r.result.value == "granted", r.reason) for r in passes_recorded(h)]
                assert [p for _, _, p in logged] == [r.pass_id for r in passes_recorded(h)]
                # a line of noise longer than any pass is dropped whole, then scanning goes on
                os.write(master, b"X" * 1500 + b"\r")
                await h.until(lambda: scanner.counters["overlong"] == 1)
                assert scanner.health().counters["codes"] == 7
        finally:
            os.close(master)
            os.close(slave)


async def test_a_keyboard_scanner_replayed_through_a_fifo(tmp_path: Path) -> None:
    fifo = tmp_path / "kbd-events"
    os.mkfifo(fifo)
    with osdp_rig(tmp_path, addresses=(1,), clock=ClockTrust("rtc")) as h:
        config = QrHidConfig(type="qr_hid", point="gw.kbd1", device=str(fifo), door="b3-east")
        scanner = HidScanner(config, context_of(h))
        writer: list[int] = []

        async def send(text: str) -> None:
            os.write(writer[0], encode_text(text + "\r"))

        bus = await run_bus(h)
        task = asyncio.create_task(scanner.run())
        try:
            await h.until(lambda: scanner.connected)
            writer.append(os.open(fifo, os.O_WRONLY))
            await check_decisions(h, send)
            assert not scanner.grabbed  # a FIFO is no input device: nothing to grab
            os.close(writer.pop())  # unplugged: the driver reopens
            await h.until(lambda: scanner.counters["reopens"] >= 1)
        finally:
            for fd in writer:
                os.close(fd)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await stop_bus(bus)


def test_keys_to_text_with_shift() -> None:
    decoder, text = KeyDecoder(), "GS1:P:ABC234\r"
    events = encode_text(text)
    typed = "".join(decoder.feed(k, c, v) for _, _, k, c, v in INPUT_EVENT.iter_unpack(events))
    assert typed == text


def gateway_yaml(tmp_path: Path, door: str) -> Path:
    key = tmp_path / "r.key"
    key.write_text(bytes(range(16)).hex())
    os.chmod(key, 0o600)
    path = tmp_path / "gw.yaml"
    path.write_text(f"""
gateway: {{id: gw-1, state_dir: ./state}}
devices:
  - {{type: qr_serial, point: gw-1.qr, port: /dev/ttyACM0, door: {door}}}
  - {{type: osdp_reader, point: gw-1.reader, port: /dev/ttyUSB0, key_file: r.key,
      door: b3-east}}
""")
    return path


def test_a_scanner_must_name_a_readers_door(tmp_path: Path) -> None:
    assert load_config(gateway_yaml(tmp_path, "b3-east")).devices[0].door == "b3-east"
    with pytest.raises(ConfigError, match=r"no such door 'b9-north'.*doors here: b3-east"):
        load_config(gateway_yaml(tmp_path, "b9-north"))


async def test_a_character_device_that_is_no_input_device_cannot_be_grabbed(
        tmp_path: Path) -> None:
    with osdp_rig(tmp_path, addresses=(1,), clock=ClockTrust("rtc")) as h:
        config = QrHidConfig(type="qr_hid", point="gw.kbd1", device="/dev/null", door="b3-east")
        scanner = HidScanner(config, context_of(h))
        task = asyncio.create_task(scanner.run())
        try:
            await h.until(lambda: scanner.detail is not None)
            assert "cannot grab /dev/null" in scanner.detail and not scanner.connected
            assert scanner.health().state.value == "down"
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def test_a_code_while_the_doors_reader_driver_is_not_running_is_counted(
        tmp_path: Path) -> None:
    master, slave = os.openpty()
    tty.setraw(master)
    tty.setraw(slave)
    with osdp_rig(tmp_path, addresses=(1,), clock=ClockTrust("rtc")) as h:
        config = QrSerialConfig(type="qr_serial", point="gw.qr1", port=os.ttyname(slave),
                                door="b3-east")
        scanner = SerialScanner(config, context_of(h))
        task = asyncio.create_task(scanner.run())  # the OSDP bus is not running
        try:
            await h.until(lambda: scanner.connected)
            os.write(master, signed(now_pass()).encode() + b"\r")
            await h.until(lambda: scanner.counters["door_unavailable"] == 1)
            assert h.records == [] and scanner.counters["codes"] == 1
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            os.close(master)
            os.close(slave)
