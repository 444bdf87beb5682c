"""The camera driver inside a real agent process, through a real Mosquitto: a camera that
stops sending frames and comes back, and a corrupt model file. Health tells both stories."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from camera_support import MjpegServer
from edge_support import AgentProcess, MqttRecorder, wait_until

from gridsense_devtools.services import Mosquitto
from gridsense_edge.simulator.video import intrusion_scenario, write_video
from gridsense_protocol import Health, Kind

DRIVER = "camera/cam-1"


def _config(tmp: Path, port: int, source: str, model: Path) -> Path:
    config = tmp / "gateway.yaml"
    config.write_text(f"""gateway: {{id: gw-cam, state_dir: {tmp / "state"}}}
mqtt: {{host: 127.0.0.1, port: {port}, keepalive_s: 10}}
health: {{interval_s: 1}}
devices:
  - type: camera
    point: cam-1
    source: "{source}"
    resolution: [320, 240]
    fps: 5
    watchdog_s: 1.5
    reconnect_max_s: 2
    detector: {{model: {model}}}
""")
    return config


@pytest.fixture
def recorder(mosquitto: Mosquitto) -> Iterator[MqttRecorder]:
    rec = MqttRecorder(mosquitto.port).start()
    yield rec
    rec.stop()


def _camera(recorder: MqttRecorder) -> list[Any]:
    healths = [m for m in recorder.messages(Kind.HEALTH) if isinstance(m, Health)]
    return [h.drivers[DRIVER] for h in healths if DRIVER in h.drivers]


def test_a_camera_that_stops_sending_frames_reconnects_and_comes_back(
    tmp_path: Path, mosquitto: Mosquitto, models: dict[str, Path], recorder: MqttRecorder,
    agents: Callable[[Path], AgentProcess],
) -> None:
    camera = MjpegServer(write_video(tmp_path / "lobby.avi", intrusion_scenario()))
    try:
        agents(_config(tmp_path, mosquitto.port, camera.url, models["yolo"]))
        first = wait_until(lambda: [h for h in _camera(recorder) if h.state.value == "ok"
                                    and h.counters.get("frames_in", 0) > 5
                                    and h.counters.get("fps_in", 0) >= 1], 30,
                           what="frames from the camera")[-1]
        assert first.counters["fps_out"] >= 1 and "detect_ms" in first.counters
        assert "last_frame_age_ms" in first.counters and "dropped_frames" in first.counters
        camera.sending.clear()  # the camera goes silent
        wait_until(lambda: [h for h in _camera(recorder) if h.state.value == "down"
                            and h.counters.get("reconnects", 0) >= 1], 30,
                   what="the watchdog noticing")
        frames_when_down = _camera(recorder)[-1].counters["frames_in"]
        camera.sending.set()  # and comes back
        wait_until(lambda: [h for h in _camera(recorder)[-1:] if h.state.value == "ok"
                            and h.counters["frames_in"] > frames_when_down + 5], 30,
                   what="frames again after the camera came back")
        assert camera.connections >= 2
    finally:
        camera.close()


def test_a_corrupt_model_is_a_clear_error_and_the_agent_keeps_running(
    tmp_path: Path, mosquitto: Mosquitto, models: dict[str, Path], recorder: MqttRecorder,
    agents: Callable[[Path], AgentProcess],
) -> None:
    model = tmp_path / "broken.onnx"
    model.write_bytes(models["yolo"].read_bytes()[:2000])  # a truncated download
    model.with_suffix(".card.yaml").write_text(models["yolo"].with_suffix(".card.yaml")
                                               .read_text())
    video = write_video(tmp_path / "lobby.avi", intrusion_scenario())
    agent = agents(_config(tmp_path, mosquitto.port, str(video), model))
    down = wait_until(lambda: [h for h in _camera(recorder) if h.state.value == "down"], 30,
                      what="the camera reported down")[-1]
    assert "broken.onnx cannot be loaded by onnxruntime" in (down.detail or "")
    assert down.counters["model_errors"] >= 1
    # The agent itself lives on: health keeps coming, and the error is logged with the file.
    count = len(_camera(recorder))
    wait_until(lambda: len(_camera(recorder)) > count + 1, 10, what="health going on")
    assert agent.proc.poll() is None
    assert "camera_model_failed" in agent.log()
