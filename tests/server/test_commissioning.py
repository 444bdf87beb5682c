"""Commissioning on the running server (real broker, InfluxDB, database, HTTP): the drill page
reaches the installer's phone (WeCom, through the vendor's stand-in) and is closed by the
system; the report lists each point's first reading from InfluxDB and the drill's times, green
only when every point reports; drills stay off the board and out of the statistics."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import channels_support
import httpx
from api_client import Api
from commissioning_support import APP_ONLY_INSTALLER, server_yaml, with_installer
from conftest import ServerFactory
from server_helpers import EdgePublisher, async_wait_until
from sqlalchemy import select
from test_cli import run_cli

from gridsense_devtools.standins.server import VendorStandins
from gridsense_server.db.models import Incident
from gridsense_server.db.web_models import AuditEntry

standins = channels_support.standins
RUN = "/api/v1/commissioning"
ZONE = ZoneInfo("Asia/Shanghai")  # the display zone the printed report uses


def _readings(edge: EdgePublisher, point: str, at: datetime, value: float) -> None:
    edge.publish(edge.telemetry([(point, "temperature", value, at),
                                 (point, "temperature", value + 1, at + timedelta(seconds=1))]))


async def _report(api: Api, run_id: str, *, until: Any) -> dict[str, Any]:
    """The report once ``until(report)`` holds (readings and pages arrive in the background)."""
    async def ready() -> dict[str, Any] | None:
        report = await api.json("installer-ly", f"{RUN}/{run_id}")
        return report if until(report) else None

    return await async_wait_until(ready, 60, f"report of {run_id}")


async def test_the_drill_reaches_the_installer_and_the_report_turns_green(
    db_url: str, start_server: ServerFactory, edge: EdgePublisher, registry_file: Path,
    standins: VendorStandins,
) -> None:
    phone = standins.wecom.app("ww7c1d", "app-secret", 1000002)
    with_installer(registry_file)
    server = await start_server(extra_yaml=server_yaml(standins))
    first_boiler = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    _readings(edge, "gw-01.boiler", first_boiler, 21.5)

    async with httpx.AsyncClient(base_url=server.http_url, trust_env=False, timeout=30) as http:
        api = Api(http)
        started = await api.as_("installer-ly", "POST", "/api/v1/gateways/gw-01/commissioning",
                                json={})
        assert started.status_code == 201, started.text
        run_id = started.json()["id"]

        await async_wait_until(lambda: phone.received, 60, "the drill on the installer's phone")
        text = phone.received[0]["markdown"]["content"]
        assert "安装调试演练" in text and "https://gridsense.test/link/" in text
        assert "WangAnZhuang" in str(phone.received[0]["touser"])

        # Delivered: the drill is closed by the system; the pump has sent nothing yet.
        report = await _report(api, run_id, until=lambda r: r["drill"]["outcome"] != "pending"
                               and r["points"][0]["ok"])
        assert report["drill"]["outcome"] == "reached"
        assert report["drill"]["reached_via"] == "wecom"
        assert report["drill"]["delivery_s"] is not None
        assert report["verdict"] == "red"
        assert [r["code"] for r in report["reasons"]] == ["no_reading"]
        boiler, pump = report["points"]
        assert (boiler["point"], pump["point"], pump["ok"]) == ("gw-01.boiler", "gw-01.pump",
                                                                False)
        assert boiler["first"] == [{"metric": "temperature", "value": 21.5,
                                    "t": first_boiler.isoformat()}]

        _readings(edge, "gw-01.pump", first_boiler + timedelta(minutes=5), 30.0)
        report = await _report(api, run_id, until=lambda r: r["verdict"] != "red")
        assert (report["verdict"], report["reasons"]) == ("green", [])

        # The installer says "received": the round trip is measured.
        acked = await api.as_("installer-ly", "POST", f"{RUN}/{run_id}/ack")
        assert acked.status_code == 200, acked.text
        drill = acked.json()["drill"]
        assert drill["outcome"] == "acknowledged" and drill["round_trip_s"] is not None
        assert (await api.as_("worker-g01", "POST", f"{RUN}/{run_id}/ack")).status_code in (
            403, 404)

        # Off the board and out of the statistics; listed only when drills are asked for.
        board = await api.json("control", "/api/v1/incidents", open="false")
        assert board == []
        [listed] = await api.json("control", "/api/v1/incidents", open="false", drill="true")
        assert (listed["id"], listed["state"], listed["drill"]) == (
            drill["incident"], "closed", True)
        stats = await api.json("control", "/api/v1/stats")
        assert stats["incidents"] == 0
        page = await api.as_("installer-ly", "GET", f"{RUN}/{run_id}/report.html")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        html = page.text
        assert "安装调试报告" in html and "合格" in html and "1号楼锅炉房" in html
        local = first_boiler.astimezone(ZONE).strftime("%Y-%m-%d %H:%M:%S")
        assert local in html
        assert "<script" not in html and "style=" not in html  # the server's CSP holds
        css = await http.get("/api/v1/commissioning/report.css")
        assert css.status_code == 200 and "@media print" in css.text

        [summary] = await api.json("control", "/api/v1/gateways/gw-01/commissioning")
        assert (summary["id"], summary["verdict"]) == (run_id, "green")
        refused = await api.as_("worker-g01", "POST", "/api/v1/gateways/gw-01/commissioning",
                                json={})
        assert refused.status_code == 403
        other = await api.as_("installer-ly", "POST", "/api/v1/gateways/gw-02/commissioning",
                              json={})
        assert other.status_code == 403  # gw-02's points are in g02, not the installer's

    with server.factory() as session:
        actions = list(session.scalars(select(AuditEntry.action).where(
            AuditEntry.action.like("commissioning.%")).order_by(AuditEntry.id)))
        drill_row = session.get(Incident, drill["incident"])
    assert actions[:3] == ["commissioning.start", "commissioning.drill",
                           "commissioning.verdict"]
    assert "commissioning.ack" in actions
    assert drill_row is not None and drill_row.drill and drill_row.policy is None


async def test_an_undelivered_drill_keeps_the_run_pending_and_a_second_run_waits(
    start_server: ServerFactory, registry_file: Path,
) -> None:
    """The installer has only the app and is not connected: nothing delivers the drill, so the
    report stays pending (then red at the timeout, see the next test) and no second run
    starts meanwhile. Nobody else is paged."""
    with_installer(registry_file, APP_ONLY_INSTALLER)
    server = await start_server(extra_yaml=server_yaml(None))
    async with httpx.AsyncClient(base_url=server.http_url, trust_env=False, timeout=30) as http:
        api = Api(http)
        started = await api.as_("control", "POST", "/api/v1/gateways/gw-01/commissioning",
                                json={"installer": "installer-ly"})
        assert started.status_code == 201, started.text
        report = started.json()
        assert report["verdict"] == "pending"
        assert report["installer"] == "installer-ly"
        await _report(api, report["id"], until=lambda r: [
            d["status"] for d in r["drill"]["deliveries"]] == ["offline"])
        again = await api.as_("installer-ly", "POST", "/api/v1/gateways/gw-01/commissioning",
                              json={})
        assert again.status_code == 409 and report["id"] in again.json()["detail"]
        named = await api.as_("installer-ly", "POST", "/api/v1/gateways/gw-01/commissioning",
                              json={"installer": "worker-g01"})
        assert named.status_code == 403
        assert await api.json("control", "/api/v1/incidents") == []
        [drill] = await api.json("control", "/api/v1/incidents", drill="true")
        assert drill["state"] == "new" and drill["point"] == "gw-01.boiler"
        tree = await api.json("control", "/api/v1/registry/tree")
        assert tree["streets"][0]["open"] == 0  # the open drill is not counted
        stats = await api.json("control", "/api/v1/stats")
        assert stats["incidents"] == 0


async def test_the_cli_commissions_a_gateway_against_the_running_server(
    tmp_path: Path, start_server: ServerFactory, edge: EdgePublisher, registry_file: Path,
    standins: VendorStandins,
) -> None:
    """``gridsense-server commission``: the running server sends the drill; the command waits
    for it, prints the report and writes the printable page; exit 0 only when green."""
    phone = standins.wecom.app("ww7c1d", "app-secret", 1000002)
    with_installer(registry_file)
    server = await start_server(extra_yaml=server_yaml(standins))
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=3)
    for point in ("gw-01.boiler", "gw-01.pump"):
        _readings(edge, point, at, 20.0)
    async with httpx.AsyncClient(base_url=server.http_url, trust_env=False, timeout=30) as http:
        api = Api(http)

        async def stored() -> bool:
            series = [await api.json("control", f"/api/v1/points/{p}/series")
                      for p in ("gw-01.boiler", "gw-01.pump")]
            return all(s["points"] for s in series)

        await async_wait_until(stored, 60, "both points' readings in InfluxDB")

    config, page = str(tmp_path / "server.yaml"), tmp_path / "report.html"
    result = await asyncio.to_thread(run_cli, "commission", "gw-01", "--installer",
                                     "installer-ly", "--config", config, "--wait", "60",
                                     "--json", "--html", str(page))
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["verdict"] == "green" and report["drill"]["reached_via"] == "wecom"
    assert report["started_by"].startswith("cli:")
    assert len(phone.received) == 1
    assert "合格" in page.read_text(encoding="utf-8")

    refused = await asyncio.to_thread(run_cli, "commission", "gw-01", "--installer", "nobody",
                                      "--config", config)
    assert refused.returncode == 2 and "nobody" in refused.stdout
