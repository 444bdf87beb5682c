"""Our IoU/centroid tracker vs norfair on the same synthetic tracks: ID switches and ms/frame.

norfair cannot be installed beside the project's numpy (it pins numpy<2 and pulls SciPy), so
this runs in any Python that has numpy — and norfair, if you want its column:

    python3 -m venv /tmp/nf && /tmp/nf/bin/pip install norfair
    /tmp/nf/bin/python scripts/bench_tracker.py        # both trackers
    .venv/bin/python scripts/bench_tracker.py          # ours only

The detections come from ground truth the script generates: objects crossing each other at a
gateway's 5 fps, with position jitter, missed detections and false positives, seeded. An ID
switch is a ground-truth object changing the track id it is matched to (IoU > 0.3).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CAMERA = REPO / "edge" / "src" / "gridsense_edge" / "camera"


def _load(name: str, path: Path) -> object:
    """Our tracker and its geometry, without importing the agent package (no pydantic here)."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _ours() -> tuple[object, object]:
    sys.modules.setdefault("camera", type(sys)("camera"))
    sys.modules["camera"].__path__ = [str(CAMERA)]  # type: ignore[attr-defined]
    geometry = _load("camera.geometry", CAMERA / "geometry.py")
    tracker = _load("camera.tracker", CAMERA / "tracker.py")
    return geometry, tracker


def scenario(seed: int, objects: int = 6, frames: int = 150, fps: float = 5.0,
             jitter: float = 3.0, miss: float = 0.1, false_rate: float = 0.2
             ) -> tuple[list[list[tuple[int, tuple[float, float, float, float]]]],
                        list[list[tuple[float, float, float, float]]]]:
    """Per frame: ground truth (object id, box) and detections (boxes) of people crossing."""
    rng = np.random.default_rng(seed)
    starts = rng.uniform([0, 40], [640, 440], size=(objects, 2))
    velocity = rng.uniform(-60, 60, size=(objects, 2))  # px/s: paths cross
    truth, detections = [], []
    for f in range(frames):
        t = f / fps
        frame_truth, frame_dets = [], []
        for i in range(objects):
            cx, cy = starts[i] + velocity[i] * t
            cx, cy = cx % 640, 40 + (cy - 40) % 400
            box = (cx - 15, cy - 40, cx + 15, cy + 40)
            frame_truth.append((i, box))
            if rng.random() > miss:
                noise = rng.normal(0, jitter, 4)
                frame_dets.append(tuple(float(v + n) for v, n in zip(box, noise, strict=True)))
        for _ in range(rng.poisson(false_rate)):
            x, y = rng.uniform(0, 600), rng.uniform(0, 400)
            frame_dets.append((x, y, x + 30, y + 80))
        truth.append(frame_truth)
        detections.append(frame_dets)
    return truth, detections


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def id_switches(truth: list, tracked: list[list[tuple[int, tuple[float, ...]]]]) -> int:
    last: dict[int, int] = {}
    switches = 0
    for frame_truth, frame_tracks in zip(truth, tracked, strict=True):
        for object_id, box in frame_truth:
            best = max(frame_tracks, key=lambda tr: _iou(tr[1], box), default=None)
            if best is None or _iou(best[1], box) <= 0.3:
                continue
            if object_id in last and last[object_id] != best[0]:
                switches += 1
            last[object_id] = best[0]
    return switches


def run_ours(detections: list, fps: float) -> tuple[list, float]:
    geometry, tracker_module = _ours()
    tracker = tracker_module.Tracker()  # type: ignore[attr-defined]
    whole = [(0.0, 0.0, 640.0, 480.0)]  # the detector looked at the whole frame every time
    out, started = [], time.perf_counter()
    for f, boxes in enumerate(detections):
        dets = [geometry.Detection("person", 0, 0.9, b) for b in boxes]  # type: ignore[attr-defined]
        tracks = tracker.update(dets, f / fps, whole)
        out.append([(t.id, t.box) for t in tracks if t.last_t == f / fps])
    return out, (time.perf_counter() - started) / len(detections) * 1000


def run_norfair(detections: list) -> tuple[list, float]:
    from norfair import Detection, Tracker

    # The best of five settings tried on these scenes (IoU 0.7/0.9, centre distance 30/50 px,
    # hit counter 5/15): centre distance 50 px, tracks kept through 15 missed frames.
    tracker = Tracker(distance_function="mean_euclidean", distance_threshold=50,
                      hit_counter_max=15, initialization_delay=1)
    out, started = [], time.perf_counter()
    for boxes in detections:
        dets = [Detection(np.array([[b[0], b[1]], [b[2], b[3]]])) for b in boxes]
        tracked = tracker.update(dets)
        out.append([(t.id, tuple(t.estimate.ravel().tolist())) for t in tracked
                    if t.last_detection is not None and t.id is not None])
    return out, (time.perf_counter() - started) / len(detections) * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    args = parser.parse_args(argv)
    try:
        import norfair  # noqa: F401

        have_norfair = True
    except ImportError:
        have_norfair = False
    totals: dict[str, list[float]] = {"ours_switches": [], "ours_ms": [],
                                      "norfair_switches": [], "norfair_ms": []}
    for seed in range(args.seeds):
        truth, detections = scenario(seed)
        tracked, ms = run_ours(detections, 5.0)
        totals["ours_switches"].append(id_switches(truth, tracked))
        totals["ours_ms"].append(ms)
        if have_norfair:
            tracked, ms = run_norfair(detections)
            totals["norfair_switches"].append(id_switches(truth, tracked))
            totals["norfair_ms"].append(ms)
    result = {"bench": "tracker", "seeds": args.seeds, "objects": 6, "frames": 150, "fps": 5}
    for name in ("ours", "norfair"):
        if totals[f"{name}_switches"]:
            result[f"{name}_id_switches"] = int(sum(totals[f"{name}_switches"]))
            result[f"{name}_ms_per_frame"] = round(float(np.mean(totals[f"{name}_ms"])), 3)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
