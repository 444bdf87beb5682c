"""Electronic passes through an OSDP reader: real libosdp readers on a pty pass the scanned QR
through as raw card data; the driver decides at that reader's door, drives its lock and LED,
and records the access event with the pass id and its holder."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import pytest
from osdp_support import SITE_KEY, Harness, osdp_rig, resident, run_bus, stop_bus
from pass_support import compact, make_pass, pass_keys, record, signed

from gridsense_edge.clock import ClockTrust
from gridsense_edge.drivers.osdp.sync import AccessSync
from gridsense_edge.events import AccessRecord
from gridsense_protocol import Command, utc_now

LED_GREEN, LED_RED = 2, 1


def sync(h: Harness, seq: int, **args: object) -> None:
    reply = AccessSync(h.store).handle(
        Command(gateway="gw", seq=seq, ts=utc_now(), name="access_sync", args=args))
    assert reply is not None and reply.ok, reply


async def scan(h: Harness, address: int, text: str, count: int) -> AccessRecord:
    h.sim.present_scan(address, text)
    await h.until(lambda: len([r for r in h.records if r.method == "pass"]) >= count)
    return [r for r in h.records if r.method == "pass"][count - 1]


async def test_passes_at_an_osdp_reader(tmp_path: Path, caplog: pytest.LogCaptureFixture
                                        ) -> None:
    caplog.set_level(logging.INFO, logger="gridsense_edge.drivers.osdp.driver")
    now = int(time.time())
    once = make_pass(uses=1, not_before=now - 60, not_after=now + 3600)
    expired = make_pass(not_before=now - 7200, not_after=now - 3600)
    early = make_pass(not_before=now + 3600, not_after=now + 7200)
    elsewhere = make_pass(doors=("b5-west",), not_before=now - 60, not_after=now + 3600)
    gone = make_pass(uses=0, not_before=now - 60, not_after=now + 3600)
    with osdp_rig(tmp_path, denied_burst=5, clock=ClockTrust("rtc")) as h:
        sync(h, 1, mode="snapshot", version=1, secret=SITE_KEY.hex(),
             credentials=[[c.id, c.card, c.pin, None, None, list(c.doors), []]
                          for c in (resident("alice", card="100200"),)],
             pass_keys=pass_keys(),
             passes=[record(p) for p in (once, expired, early, elsewhere, gone)])
        task = await run_bus(h)
        try:
            since = time.monotonic()
            granted = await scan(h, 1, compact(once), 1)
            assert (granted.result.value, granted.pass_id, granted.credential, granted.reason,
                    granted.card) == ("granted", once.pass_id, "alice", None, None)
            lock = await h.command(lambda c: c.address == 1 and c.name == "output", 10, since)
            assert lock is not None and lock.args["timer_count"] == 50
            assert h.store.passes.used(once.pass_id) == 1
            # the revocation reaches the gateway; from then on it is refused
            sync(h, 2, mode="delta", base=1, version=2, revoked_passes=[gone.pass_id])
            cases = [(compact(once), "used_up"), (compact(expired), "expired"),
                     (compact(early), "not_yet_valid"), (compact(elsewhere), "door_not_allowed"),
                     (compact(gone), "revoked"), (compact(make_pass()), "unknown")]
            for n, (text, reason) in enumerate(cases, start=2):
                since = time.monotonic()
                denied = await scan(h, 1, text, n)
                assert (denied.result.value, denied.reason) == ("denied", reason), reason
                red = await h.command(
                    lambda c: c.name == "led" and c.args["on_color"] == LED_RED, 10, since)
                assert red is not None and red.address == 1
            assert await h.command(lambda c: c.name == "output", 0.5, since) is None
            # five denials at the door: repeated_denied, passes counted like cards
            assert h.incident_states("repeated_denied") == [("gw.door1", "active")]
            decisions = [r for r in caplog.records if r.getMessage() == "access_decision"]
            assert len(decisions) == 7
        finally:
            await stop_bus(task)


async def test_a_forged_or_unsynchronised_pass_never_opens(tmp_path: Path) -> None:
    now = int(time.time())
    good = make_pass(uses=0, not_before=now - 60, not_after=now + 3600)
    synced = [False]
    with osdp_rig(tmp_path, clock=ClockTrust("kernel", probe=lambda: synced[0])) as h:
        sync(h, 1, mode="snapshot", version=1, secret=SITE_KEY.hex(), credentials=[],
             pass_keys=pass_keys(), passes=[record(good)])
        task = await run_bus(h)
        try:
            since = time.monotonic()
            assert (await scan(h, 1, compact(good), 1)).reason == "clock"
            health = h.bus.health()
            assert health.counters["clock_unsynchronised"] == 1
            assert health.counters["pass_clock_refused"] == 1
            assert health.detail is not None and "clock" in health.detail
            tampered = bytearray(compact(good).encode())
            tampered[-1] = ord("A") if tampered[-1] != ord("A") else ord("B")
            assert (await scan(h, 1, tampered.decode(), 2)).reason == "forged"
            assert await h.command(lambda c: c.name == "output", 0.5, since) is None
            synced[0] = True
            await asyncio.sleep(1.05)  # the clock trust re-reads its source once a second
            ok = await scan(h, 1, compact(good), 3)
            assert ok.result.value == "granted" and ok.pass_id == good.pass_id
            assert h.bus.health().counters["clock_unsynchronised"] == 0
            assert h.bus.health().detail is None
        finally:
            await stop_bus(task)


def test_the_signed_form_is_too_long_for_an_osdp_reader(tmp_path: Path) -> None:
    from gridsense_edge.simulator.osdp import OsdpReaderSimulator

    sim = OsdpReaderSimulator(tmp_path / "tty", [])
    with pytest.raises(ValueError, match="at most 64"):
        sim.present_scan(1, signed(make_pass()))
