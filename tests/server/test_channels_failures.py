"""The vendors' errors by name: a rate-limit answer backs the robot off and what piled up
goes as singles plus one digest; a bad token, secret, signature or mailbox is a named failure
in the delivery log, never retried, and the next escalation step is paged at once."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import channels_support
from channels_support import Rig, lifecycle
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from gridsense_devtools.standins.server import VendorStandins
from gridsense_devtools.standins.smtp import SmtpStandin
from gridsense_server.config import LifecycleConfig
from gridsense_server.db.models import EscalationStep, IncidentTransition

factory = channels_support.factory
standins = channels_support.standins
smtp = channels_support.smtp


async def test_a_rate_limit_answer_backs_off_then_sends_the_pile_as_a_digest(
    factory: sessionmaker[Session], standins: VendorStandins
) -> None:
    # Another system shares the robot: DingTalk stops it after two messages this minute,
    # though our own budget (20) is far from spent.
    robot = standins.dingtalk.robot("tok-g01", per_min=2)
    rig = Rig(factory, lifecycle(standins, ["group:dingtalk"], dingtalk={"group_over": 3}),
              robots={"dingtalk": "dingtalk://tok-g01"})
    rig.open(2)
    await rig.sender.process_due()
    assert len(robot.received) == 2

    rig.open(5, first_seq=3)
    await rig.sender.process_due()  # the first try is refused: 130101, the rest held back
    assert (len(robot.received), len(robot.refused)) == (2, 1)
    held = rig.deliveries()[2:]
    assert {(d.status, d.attempts) for d in held} == {("retry", 0)}
    assert "dingtalk 130101: send too fast" in (held[0].error or "")
    assert rig.counters.get("notify.rate_limited") == 1

    rig.clock.advance(60)
    await rig.sender.process_due()  # still inside DingTalk's ten minutes: nothing is tried
    assert len(robot.refused) == 1

    robot.limit.per_min = 20
    robot.limit.lift()
    rig.clock.advance(700)  # past DingTalk's ten minutes with the sender's jitter (up to 1.2x)
    await rig.sender.process_due()
    assert len(robot.received) == 5  # two singles, then the other three as one digest
    assert robot.received[-1]["markdown"]["title"] == "【汇总】3 条告警待处理"
    assert robot.received[-1]["markdown"]["text"].count("/link/") == 3
    assert [d.status for d in rig.deliveries()] == ["sent"] * 5 + ["digested"] * 2


async def test_a_bad_dingtalk_token_is_named_and_the_next_step_is_paged_at_once(
    factory: sessionmaker[Session], standins: VendorStandins
) -> None:
    rig = Rig(factory, lifecycle(standins, ["group:dingtalk"]),
              robots={"dingtalk": "dingtalk://no-such-token"})
    [incident_id] = rig.open()
    assert rig.paged() == {"grid:g01"}
    await rig.sender.process_due()
    [failed] = rig.deliveries()
    assert (failed.status, failed.attempts) == ("failed", 1)
    assert failed.error == "dingtalk 300001: token is not exist [配置错误]"
    assert rig.counters.get("notify.escalated_on_failure") == 1

    rig.scheduler.run_due()  # no time has passed: step 2 (the leader) was brought forward
    assert rig.paged() == {"grid:g01", "leader-g01"}
    with factory() as session:
        notes = list(session.scalars(select(IncidentTransition.note).where(
            IncidentTransition.incident_id == incident_id,
            IncidentTransition.action == "escalate")))
    assert any("leader" in note for note in notes)
    await rig.sender.process_due()
    assert rig.deliveries()[0].attempts == 1  # given up: not tried again


async def test_a_wrong_signing_secret_is_refused_by_dingtalk_and_feishu(
    factory: sessionmaker[Session], standins: VendorStandins
) -> None:
    ding = standins.dingtalk.robot("tok-g01", secret="SECright")
    bot = standins.feishu.bot("hook-g01", secret="right")
    rig = Rig(factory, lifecycle(standins, ["group:dingtalk", "group:feishu"]),
              robots={"dingtalk": "dingtalk://SECwrong@tok-g01",
                      "feishu": "feishu://wrong@hook-g01"})
    rig.open()
    await rig.sender.process_due()
    assert (ding.received, bot.received) == ([], [])
    errors = {d.channel: (d.status, d.error) for d in rig.deliveries()}
    assert errors["group:dingtalk"][0] == "failed"
    assert (errors["group:dingtalk"][1] or "").startswith("dingtalk 310000: sign not match")
    assert errors["group:feishu"] == (
        "failed", "feishu 19021: sign match fail or timestamp is not within one hour from "
                  "current time [配置错误]")


async def test_a_wrong_wecom_secret_fails_at_gettoken(
    factory: sessionmaker[Session], standins: VendorStandins
) -> None:
    app = standins.wecom.app("ww7c1d", "app-secret", 1000002)
    rig = Rig(factory, lifecycle(standins, ["wecom"]),
              contacts={"wecom": "wechat://ww7c1d:old-secret@1000002/ZhangWei"})
    rig.open()
    await rig.sender.process_due()
    assert (app.tokens_issued, app.received) == (0, [])
    [failed] = rig.deliveries()
    assert (failed.status, failed.error) == (
        "failed", "wecom 40001: gettoken: invalid credential [配置错误]")


async def test_a_refused_mailbox_is_named(
    factory: sessionmaker[Session], standins: VendorStandins,
    smtp: tuple[SmtpStandin, Path],
) -> None:
    server, ca_file = smtp
    rig = Rig(factory, lifecycle(standins, ["email"], email=server.settings(ca_file)),
              contacts={"email": "email://gone@invalid.test"})
    rig.open()
    await rig.sender.process_due()
    assert server.messages == []
    [failed] = rig.deliveries()
    assert (failed.status, failed.error) == (
        "failed", "email 550: 5.1.1 mailbox unavailable [配置错误]")


async def test_a_server_certificate_from_another_ca_is_refused(
    factory: sessionmaker[Session], standins: VendorStandins,
    smtp: tuple[SmtpStandin, Path], tmp_path: Path,
) -> None:
    from gridsense_server.pki.ca import DeploymentCA

    server, _ = smtp
    other, _ = DeploymentCA.init(tmp_path / "other-ca")
    rig = Rig(factory, lifecycle(standins, ["email"], email=server.settings(other.cert_file)),
              contacts={"email": "email://zhangwei@example.test"})
    rig.open()
    await rig.sender.process_due()
    assert server.messages == []
    [failed] = rig.deliveries()
    assert failed.status == "failed" and "certificate verify failed" in (failed.error or "")


async def test_a_failed_page_does_not_pull_the_next_loop_forward(
    factory: sessionmaker[Session], standins: VendorStandins
) -> None:
    """One step, repeated: the repeat would page the same unreachable robot again, so it keeps
    its time instead of running through every loop at once."""
    config = LifecycleConfig.model_validate({
        "policies": {"p": {"steps": [{"after_s": 0, "notify": ["workers"],
                                      "channels": ["group:dingtalk"]}],
                           "repeat": 2, "repeat_every_s": 900}},
        "vendors": {"dingtalk": {"base_url": standins.base}}})
    rig = Rig(factory, config, robots={"dingtalk": "dingtalk://no-such-token"})
    [incident_id] = rig.open()
    await rig.sender.process_due()
    assert [d.status for d in rig.deliveries()] == ["failed"]
    with factory() as session:
        [(loop, due)] = session.execute(select(EscalationStep.loop, EscalationStep.due_at).where(
            EscalationStep.incident_id == incident_id,
            EscalationStep.status == "pending")).all()
    assert (loop, due) == (1, rig.clock.now + timedelta(seconds=900))
