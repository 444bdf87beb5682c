"""Camera pipeline benchmarks behind docs/benchmarks.md (one JSON line per result).

- ``inference``: ms per inference of a YOLOX-nano-sized network (random weights,
  gridsense_devtools.detectors.timing) at 320/416/640, onnxruntime on one thread and on two.
- ``overhead``: a busy scene through the whole per-frame pipeline (motion, crop, preprocess,
  inference, decode, NMS, tracking, rules) vs the time inside ``session.run`` alone.
- ``cpu``: one camera (640x480 video, paced in real time at 5 fps, looping) with capture and
  pipeline threads as the agent runs them: CPU % of one core when idle (nothing moves) and busy
  (people walk through all the time).
- ``drops``: a 25 fps stream and a model that cannot keep up: frames in, processed, dropped.

Usage: ``scripts/bench camera [inference|overhead|cpu|drops ...] [--seconds N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from gridsense_devtools.detectors import timing
from gridsense_edge.drivers.camera.capture import CaptureSettings, CaptureWorker, Frame
from gridsense_edge.drivers.camera.detectors.runtime import OnnxDetector
from gridsense_edge.drivers.camera.pipeline import Output, Pipeline, PipelineSettings
from gridsense_edge.drivers.camera.rules import CAMERA_RULES
from gridsense_edge.drivers.camera.zones import Zone
from gridsense_edge.simulator.video import VideoScenario, walk, write_video

W, H = 640, 480


def report(name: str, **figures: object) -> None:
    machine = {"cpus": os.cpu_count(), "python": platform.python_version(),
               "cpu": platform.processor() or platform.machine()}
    print(json.dumps({"bench": name, **figures, "machine": machine}), flush=True)


def timing_model(folder: Path, size: int) -> Path:
    path = folder / f"yolox-nano-sized-{size}.onnx"
    if not path.exists():
        model, _, _ = timing.build(size)
        onnx.save(model, str(path))
        path.with_suffix(".card.yaml").write_text(
            f"name: yolox-nano-sized-{size}\nlicense: Apache-2.0 (random weights)\n"
            f"format: yolox\ninput: {{width: {size}, height: {size}, color: bgr, scale: 1.0}}\n"
            f"labels: [{', '.join(['person', 'bicycle', 'car'] + [f'c{i}' for i in range(77)])}]\n"
        )
    return path


def busy_scene(duration: float = 10.0) -> VideoScenario:
    """People walking across a 640x480 view all the time, staggered."""
    figures = [walk("person", (-40.0 + 0, 150.0 + 60 * i, 0.0, 270.0 + 60 * i),
                    (640.0, 150.0 + 60 * i, 680.0, 270.0 + 60 * i), 2.5 * i, 2.5 * i + 7)
               for i in range(3)]
    return VideoScenario(width=W, height=H, fps=10, duration_s=duration, figures=figures)


def idle_scene() -> VideoScenario:
    return VideoScenario(width=W, height=H, fps=10, duration_s=10.0)


class TimedDetector(OnnxDetector):
    """Counts the time spent inside ``session.run`` (the model's own inference time)."""

    inference_s = 0.0

    def run(self, tensor: np.ndarray) -> Any:
        started = time.perf_counter()
        try:
            return super().run(tensor)
        finally:
            self.inference_s += time.perf_counter() - started


def bench_inference(folder: Path) -> None:
    for size in (320, 416, 640):
        _model, macs, params = timing.build(size)
        path = timing_model(folder, size)
        for threads in (1, 2):
            detector = OnnxDetector(path, threads=threads)
            image = np.random.default_rng(0).integers(0, 255, (size, size, 3), dtype=np.uint8)
            for _ in range(3):
                detector.infer(image)
            times = []
            for _ in range(20):
                started = time.perf_counter()
                detector.infer(image)
                times.append((time.perf_counter() - started) * 1000)
            report("camera-inference", input=size, threads=threads,
                   ms_median=round(statistics.median(times), 1),
                   ms_p90=round(sorted(times)[int(len(times) * 0.9)], 1),
                   gmacs=round(macs / 1e9, 2), params_m=round(params / 1e6, 2))


def _pipeline(detector: OnnxDetector, capture: CaptureWorker,
              out: asyncio.Queue[Output] | None = None,
              loop: asyncio.AbstractEventLoop | None = None) -> Pipeline:
    plugin = CAMERA_RULES.get("intrusion")
    rule = plugin.factory(plugin.config_model.model_validate({"type": "intrusion",
                                                              "zone": "right"}))
    zones = {"right": Zone("right", ((320, 0), (640, 0), (640, 480), (320, 480)))}
    return Pipeline("bench", capture, detector, [rule],
                    PipelineSettings(zones=zones, resolution=(W, H)),
                    out or asyncio.Queue(), loop or asyncio.new_event_loop())


def bench_overhead(folder: Path) -> None:
    import cv2

    video = write_video(folder / "busy.avi", busy_scene())
    detector = TimedDetector(timing_model(folder, 416))
    pipeline = _pipeline(detector, CaptureWorker("bench", CaptureSettings(source=str(video))))
    capture = cv2.VideoCapture(str(video))
    frames = []
    while True:
        ok, image = capture.read()
        if not ok:
            break
        frames.append(image)
    from datetime import UTC, datetime

    started = time.perf_counter()
    for index, image in enumerate(frames):
        pipeline.process(Frame(image, index / 10, datetime.now(UTC), index))
    total = time.perf_counter() - started
    runs = pipeline.counters["detector_runs"]
    report("camera-overhead", frames=len(frames), detector_runs=runs, input=416,
           pipeline_ms_per_frame=round(total / len(frames) * 1000, 2),
           inference_ms_per_frame=round(detector.inference_s / len(frames) * 1000, 2),
           overhead_percent=round((total - detector.inference_s) / detector.inference_s * 100,
                                  1))


async def _run_camera(video: Path, model: Path, fps: float, seconds: float,
                      realtime: bool = True) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    out: asyncio.Queue[Output] = asyncio.Queue(64)
    capture = CaptureWorker("bench", CaptureSettings(source=str(video), fps=fps,
                                                     realtime=realtime, loop=True))
    pipeline = _pipeline(OnnxDetector(model), capture, out, loop)
    capture.start()
    pipeline.start()

    async def drain() -> None:
        while True:
            await out.get()

    drainer = asyncio.create_task(drain())
    await asyncio.sleep(3)  # model warm-up and the background being learnt
    before = os.times()
    frames_in, frames_out = capture.counters["frames_in"], pipeline.counters["frames_out"]
    dropped = capture.counters["dropped_frames"]
    started = time.monotonic()
    await asyncio.sleep(seconds)
    wall = time.monotonic() - started
    after = os.times()
    result = {
        "seconds": round(wall),
        "cpu_percent_of_one_core": round((after.user + after.system - before.user
                                          - before.system) / wall * 100, 1),
        "frames_in": capture.counters["frames_in"] - frames_in,
        "frames_processed": pipeline.counters["frames_out"] - frames_out,
        "dropped_frames": capture.counters["dropped_frames"] - dropped,
        "detector_runs": pipeline.counters["detector_runs"],
        "detect_ms": round(pipeline.detect_ms, 1),
    }
    drainer.cancel()
    await asyncio.to_thread(pipeline.stop)
    await asyncio.to_thread(capture.stop)
    return result


def bench_cpu(folder: Path, seconds: float) -> None:
    model = timing_model(folder, 416)
    for name, scene in (("idle", idle_scene()), ("busy", busy_scene())):
        video = write_video(folder / f"{name}.avi", scene)
        result = asyncio.run(_run_camera(video, model, 5.0, seconds))
        report("camera-cpu", scene=name, fps=5, frame=f"{W}x{H}", input=416, **result)


def bench_drops(folder: Path, seconds: float) -> None:
    scene = busy_scene()
    fast = VideoScenario(width=W, height=H, fps=25, duration_s=scene.duration_s,
                         figures=scene.figures)
    video = write_video(folder / "busy25.avi", fast)
    result = asyncio.run(_run_camera(video, timing_model(folder, 640), 25.0, seconds))
    report("camera-drops", stream_fps=25, frame=f"{W}x{H}", input=640, **result)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench camera",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("which", nargs="*", default=["inference", "overhead", "cpu", "drops"],
                        choices=["inference", "overhead", "cpu", "drops"])
    parser.add_argument("--seconds", type=float, default=20, help="sampling time (cpu, drops)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-camera-") as tmp:
        folder = Path(tmp)
        for which in args.which:
            if which == "inference":
                bench_inference(folder)
            elif which == "overhead":
                bench_overhead(folder)
            elif which == "cpu":
                bench_cpu(folder, args.seconds)
            else:
                bench_drops(folder, args.seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
