"""Camera rules judged on rendered scenes: events caught, false incidents, delay.

Each rule (``scenes.RULES``) is run on seeded scenes of its event and of near misses
(``scenes.py``), each scene through the pipeline as the gateway runs it: the video written as
MJPG and decoded by OpenCV, motion gating, the ONNX detector (the synthetic one the camera tests
use, built here with the ``onnx`` package; no real model ships), the tracker, the rule. A scene
with the event is **caught** when the rule raises within ``HORIZON_S`` of the moment the
ground truth met its condition (the oracle); the delay runs from that moment. Every other
raise is a **false incident**: any in a near miss, one more than a second before the oracle,
and a second raise in one scene.

Usage: ``python models/detectors/harness.py [--scenes 20] [--layout yolox] [--markdown|--json]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scenes import RULES, ZONE, Scene, oracle, scenes

from gridsense_devtools.camera_pipeline import frames_of, make_pipeline
from gridsense_devtools.detectors.synthetic import LAYOUTS, model_in
from gridsense_edge.drivers.camera.pipeline import CameraIncident
from gridsense_edge.simulator.video import write_video
from gridsense_protocol import AlarmState

HORIZON_S = 3.0  # a raise later than this after the oracle is a miss
EARLY_S = 1.0  # a raise this long before the oracle is a false incident


def raised_at(scene: Scene, model: Path, folder: Path) -> list[float]:
    """Frame times at which the rule raised (ACTIVE) over the scene."""
    video = write_video(folder / f"{scene.rule}.avi", scene.video)
    pipeline = make_pipeline(model, {"zone": ZONE}, [RULES[scene.rule]])
    out: list[float] = []
    for frame in frames_of(video):
        for o in pipeline.process(frame):
            if isinstance(o, CameraIncident) and o.outcome.state is AlarmState.ACTIVE:
                out.append(frame.t)
    return out


def judge(scene: Scene, raised: list[float]) -> tuple[float | None, int]:
    """(delay from the oracle if caught, false incidents) of one scene."""
    truth = oracle(scene)
    if not scene.positive or truth is None:
        return None, len(raised)
    caught = next((t for t in raised if truth - EARLY_S <= t <= truth + HORIZON_S), None)
    false = len(raised) - (caught is not None)
    return (None if caught is None else round(caught - truth, 2)), false


def evaluate(count: int = 20, seed: int = 1, layout: str = "yolox",
             rules: list[str] | None = None,
             progress: Callable[[str], None] = lambda _: None) -> dict[str, object]:
    result: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        model = model_in(folder, layout)
        for rule in rules or list(RULES):
            delays: list[float] = []
            missed: list[str] = []
            false = {"near_miss": 0, "event_scenes": 0}
            kinds: dict[str, int] = {}
            for scene in scenes(rule, count, seed):
                if scene.positive and oracle(scene) is None:
                    raise AssertionError(f"{rule}: an event scene the ground truth never meets")
                if not scene.positive and oracle(scene) is not None:
                    raise AssertionError(f"{rule}: a near miss ({scene.kind}) that is an event")
                delay, extra = judge(scene, raised_at(scene, model, folder))
                if scene.positive:
                    if delay is None:
                        missed.append(scene.kind)
                    else:
                        delays.append(delay)
                    false["event_scenes"] += extra
                else:
                    false["near_miss"] += extra
                    kinds[scene.kind] = kinds.get(scene.kind, 0) + extra
            result[rule] = {
                "config": RULES[rule], "event_scenes": count, "near_misses": count,
                "caught": len(delays), "recall": round(len(delays) / count, 3),
                "median_delay_s": round(statistics.median(delays), 2) if delays else None,
                "p90_delay_s": round(_p90(delays), 2) if delays else None,
                "false_incidents": false, "false_by_near_miss": kinds,
            }
            progress(f"{rule}: {result[rule]}")
    return {"layout": layout, "scenes_per_kind": count, "seed": seed, "horizon_s": HORIZON_S,
            "rules": result}


def _p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]


def markdown(result: dict[str, object]) -> str:
    rules = result["rules"]
    assert isinstance(rules, dict)
    lines = ["| rule (as judged) | event scenes caught | delay median / p90 | "
             "false incidents in near misses | false incidents in event scenes |",
             "|---|---|---|---|---|"]
    for rule, r in rules.items():
        config = ", ".join(f"{k} {v}" for k, v in r["config"].items() if k not in ("type", "zone"))
        name = f"{rule} ({config})" if config else rule
        delay = ("—" if r["median_delay_s"] is None
                 else f"{r['median_delay_s']:g} / {r['p90_delay_s']:g} s")
        near = ", ".join(f"{k} {v}" for k, v in r["false_by_near_miss"].items())
        lines.append(f"| {name} | {r['caught']}/{r['event_scenes']} ({r['recall']:.0%}) | "
                     f"{delay} | {r['false_incidents']['near_miss']} in {r['near_misses']} "
                     f"({near}) | {r['false_incidents']['event_scenes']} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenes", type=int, default=20, help="event scenes (and near misses) "
                        "per rule")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--layout", choices=LAYOUTS, default="yolox")
    parser.add_argument("--rule", action="append", choices=list(RULES), help="repeatable")
    out = parser.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true")
    out.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    result = evaluate(args.scenes, args.seed, args.layout, args.rule,
                      lambda line: print(line, file=sys.stderr, flush=True))
    print(json.dumps(result) if args.json else markdown(result) if args.markdown else result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
