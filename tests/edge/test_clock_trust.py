"""Clock trust: passes are judged only on a clock synchronised since boot."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from gridsense_edge import clock
from gridsense_edge.clock import ClockTrust, kernel_synchronised, timesyncd_synchronised
from gridsense_edge.config import load_config
from gridsense_edge.doctor.checks import check_pass_clock


class FakeTime:
    def __init__(self) -> None:
        self.wall, self.mono = 1_796_000_000.0, 100.0

    def advance(self, seconds: float) -> None:
        self.wall += seconds
        self.mono += seconds


def test_untrusted_until_a_source_vouches_then_logged_once(
        caplog: pytest.LogCaptureFixture) -> None:
    t, synced = FakeTime(), [False]
    trust = ClockTrust("kernel", probe=lambda: synced[0], wall=lambda: t.wall,
                       mono=lambda: t.mono)
    caplog.set_level(logging.INFO, logger="gridsense_edge.clock")
    assert [trust.trusted() for _ in range(5)] == [False] * 5
    assert sum("clock_unsynchronised" in r.message for r in caplog.records) == 1
    synced[0] = True
    t.advance(2)
    assert trust.trusted() and trust.changes == 2
    assert sum("clock_synchronised" in r.message for r in caplog.records) == 1
    # the NTP client loses the network: the kernel says unsynchronised, the clock is still good
    synced[0] = False
    t.advance(3600)
    assert trust.trusted()


def test_a_step_nobody_vouches_for_withdraws_the_trust() -> None:
    t, synced = FakeTime(), [True]
    trust = ClockTrust("timesyncd", probe=lambda: synced[0], wall=lambda: t.wall,
                       mono=lambda: t.mono)
    assert trust.trusted()
    synced[0] = False
    t.wall -= 86400 * 30  # set back a month by hand
    assert not trust.trusted()
    synced[0] = True  # synchronised again
    t.advance(2)
    assert trust.trusted()
    # an NTP step while the source vouches for it is no attack
    t.wall += 20
    assert trust.trusted()


def test_the_real_probes_read_this_machine(tmp_path: Path) -> None:
    assert isinstance(kernel_synchronised(), bool)
    flag = tmp_path / "synchronized"
    assert not timesyncd_synchronised(flag)
    flag.touch()
    assert timesyncd_synchronised(flag)
    assert ClockTrust("rtc").trusted()
    assert clock.clock_trust("rtc") is clock.clock_trust("rtc")


def test_doctor_says_whether_doors_will_judge_passes(tmp_path: Path) -> None:
    key = tmp_path / "r.key"
    key.write_text(bytes(range(16)).hex())
    key.chmod(0o600)

    def config(source: str) -> Path:
        path = tmp_path / f"{source}.yaml"
        path.write_text(
            "gateway: {id: gw-1, state_dir: ./state}\ndevices:\n"
            "  - {type: osdp_reader, point: gw-1.r, port: /dev/ttyUSB0, key_file: r.key, "
            f"pass_clock: {source}}}\n")
        return path

    (trusted,) = check_pass_clock(load_config(config("rtc")))
    assert trusted.status.value == "ok" and trusted.check == "pass_clock:rtc"
    (kernel,) = check_pass_clock(load_config(config("kernel")))
    assert (kernel.status.value == "ok") == kernel_synchronised()
    if kernel.status.value != "ok":
        assert "reason clock" in kernel.detail and "pass_clock: rtc" in kernel.fix
    plain = tmp_path / "plain.yaml"
    plain.write_text("gateway: {id: gw-1, state_dir: ./state}\n")
    assert check_pass_clock(load_config(plain)) == []
