"""The gateway's /metrics: a real agent process polling simulated Modbus sensors over a real
broker; its outbox, drivers, devices and poll latency as Prometheus reads them, the outbox
growing while the broker is down; the hand-written text format as Prometheus' own parser reads
it; the gateway dashboard names only metrics the agent declares."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from edge_support import AgentProcess, wait_until, write_config
from prometheus_client.parser import text_string_to_metric_families

from gridsense_devtools.dashboards import dashboard_files, metric_names, queries
from gridsense_devtools.ports import free_port
from gridsense_devtools.services import Mosquitto
from gridsense_edge.metrics.gateway import GatewayState, gateway_metrics
from gridsense_edge.simulator import ModbusSensorSimulator, SimulatedSensor
from gridsense_protocol import DriverHealth, DriverState

GW = "gw-m1"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _parse(text: str) -> Samples:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def _value(samples: Samples, metric: str, /, **labels: str) -> float | None:
    return samples.get((metric, tuple(sorted(labels.items()))))


@pytest.fixture
def simulator(tmp_path: Path) -> Iterator[ModbusSensorSimulator]:
    sensors = [SimulatedSensor(n, "xy-md02", {"temperature": 21.0, "humidity": 40.0})
               for n in (1, 2)]
    with ModbusSensorSimulator(tmp_path / "ttySIM0", sensors, seed=5) as sim:
        yield sim


def _config(folder: Path, mqtt_port: int, metrics_port: int) -> Path:
    return write_config(folder / "gateway.yaml", {
        "gateway": {"id": GW, "state_dir": "./state"},
        "mqtt": {"host": "127.0.0.1", "port": mqtt_port, "keepalive_s": 10},
        "health": {"interval_s": 1},
        "metrics": {"port": metrics_port},
        "buses": [{"id": "rs485-0", "port": "./ttySIM0", "timeout_s": 0.4}],
        "devices": [
            {"type": "modbus_temperature", "point": f"{GW}.s{n}", "bus": "rs485-0", "slave": n,
             "profile": "xy-md02", "poll_interval_s": 0.2, "refresh_interval_s": 1}
            for n in (1, 2)
        ],
    })


def test_a_running_gateway_serves_its_metrics_on_loopback(
    tmp_path: Path, mosquitto: Mosquitto, simulator: ModbusSensorSimulator,
    agents: Callable[[Path], AgentProcess],
) -> None:
    port = free_port()
    agents(_config(tmp_path, mosquitto.port, port))
    url = f"http://127.0.0.1:{port}/metrics"

    def scrape() -> Samples | None:
        try:
            reply = httpx.get(url, trust_env=False, timeout=5)
        except httpx.TransportError:
            return None
        assert reply.status_code == 200
        assert reply.headers["content-type"].startswith("text/plain; version=0.0.4")
        return _parse(reply.text)

    driver = "modbus_temperature/rs485-0"

    def polled() -> Samples | None:
        samples = scrape()
        if samples is None or not (_value(samples, "gridsense_edge_readings_total") or 0) > 4:
            return None
        if (_value(samples, "gridsense_edge_polls_total", driver=driver) or 0) < 4:
            return None
        return samples if _value(samples, "gridsense_edge_mqtt_connected") == 1 else None

    samples = wait_until(polled, 60, what="readings counted on /metrics")
    assert _value(samples, "gridsense_edge_driver_state", driver=driver, state="ok") == 1
    assert _value(samples, "gridsense_edge_driver_state", driver=driver, state="down") == 0
    for n in (1, 2):
        assert _value(samples, "gridsense_edge_device_state", driver=driver,
                      device=f"{GW}.s{n}", state="ok") == 1
    polls = _value(samples, "gridsense_edge_polls_total", driver=driver)
    poll_s = _value(samples, "gridsense_edge_poll_seconds_total", driver=driver)
    assert polls and polls >= 4 and poll_s is not None and poll_s >= 0
    assert _value(samples, "gridsense_edge_outbox_dropped_total", reason="cap") == 0
    assert _value(samples, "gridsense_edge_info", gateway=GW) == 1
    assert (_value(samples, "gridsense_edge_resident_memory_bytes") or 0) > 10 * 2**20
    assert httpx.get(f"http://127.0.0.1:{port}/other", trust_env=False).status_code == 404

    # The broker goes away: what the drivers read waits in the bulk lane, and says so.
    mosquitto.stop()

    def backlog() -> bool:
        found = scrape()
        return found is not None and (
            _value(found, "gridsense_edge_outbox_depth", lane="bulk") or 0) >= 3

    wait_until(backlog, 60, what="the bulk lane growing while the broker is down")
    later = scrape()
    assert later is not None and _value(later, "gridsense_edge_mqtt_connected") == 0

    # Every metric the gateway dashboard charts is one the agent declares (a camera's frames
    # are declared without a camera: no samples then).
    page = httpx.get(url, trust_env=False).text
    declared = set(re.findall(r"^# TYPE (\S+) ", page, re.MULTILINE))
    [edge_board] = [p for p in dashboard_files() if p.stem == "gridsense-edge"]
    wanted = {name for query in queries(edge_board) for name in metric_names(query.text)}
    assert len(wanted) >= 8 and wanted <= declared, wanted - declared


class _Camera:
    """A health source shaped as the camera driver reports (its counter names)."""

    name = 'camera/gate "north"\nexit'

    def health(self) -> DriverHealth:
        return DriverHealth(state=DriverState.DEGRADED, counters={
            "frames_in": 900, "frames_out": 850, "dropped_frames": 50, "detect_ms": 12},
            devices={"gw-m1.cam\\1": "ok"})


class _Broken:
    name = "broken"

    def health(self) -> DriverHealth:
        raise RuntimeError("driver bug")


def test_the_hand_written_text_is_what_prometheus_parses() -> None:
    counters = {"readings": 7, "outbox_bulk_depth": 3, "outbox_dropped_age": 2,
                "mqtt_connected": 1}
    page = gateway_metrics(GatewayState(GW, lambda: counters, lambda: [_Camera(), _Broken()],
                                        time.monotonic())).decode()
    samples = _parse(page)
    camera = _Camera.name
    assert _value(samples, "gridsense_edge_camera_frames_total", driver=camera,
                  stage="processed") == 850
    assert _value(samples, "gridsense_edge_camera_frames_total", driver=camera,
                  stage="captured") == 900
    assert _value(samples, "gridsense_edge_camera_dropped_frames_total", driver=camera) == 50
    assert _value(samples, "gridsense_edge_device_state", driver=camera, device="gw-m1.cam\\1",
                  state="ok") == 1
    assert _value(samples, "gridsense_edge_driver_value", driver=camera, name="detect_ms") == 12
    assert _value(samples, "gridsense_edge_driver_state", driver="broken", state="down") == 1
    assert _value(samples, "gridsense_edge_outbox_depth", lane="bulk") == 3
    assert _value(samples, "gridsense_edge_outbox_depth", lane="incident") == 0
    assert _value(samples, "gridsense_edge_outbox_dropped_total", reason="age") == 2
    assert _value(samples, "gridsense_edge_readings_total") == 7


async def test_a_metrics_port_in_use_is_logged_and_the_agent_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from gridsense_edge.metrics import MetricsListener

    first = MetricsListener(lambda: b"", "127.0.0.1", 0)
    port = await first.start()
    assert port is not None
    try:
        second = MetricsListener(lambda: b"", "127.0.0.1", port)
        assert await second.start() is None
        [record] = [r for r in caplog.records if r.getMessage() == "metrics_listen_failed"]
        fields = record.gridsense_fields  # type: ignore[attr-defined]
        assert fields["address"] == f"127.0.0.1:{port}" and fields["setting"] == "metrics.port"
    finally:
        await first.stop()
