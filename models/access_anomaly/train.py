"""Train the access-pattern anomaly model and export it to ONNX (no torch: the onnx package).

The model answers "how unusual is this swipe": the negative log-probability of the swipe's
local hour under a blend of that credential's own hourly profile and the door's hourly profile
(Laplace-smoothed counts; a credential or door the model has not seen uses the whole site's
profile). The threshold is a high quantile of the training swipes' own scores, so about
``1 - quantile`` of normal swipes would alarm. Everything the edge needs travels in the file:
the two tables are initializers, the credential and door vocabularies, the threshold, the
blend and the site's UTC offset are metadata.

Graph: inputs ``cred_hour`` and ``door_hour`` (int64 [N]: row index x 24 + local hour), output
``score`` (float [N]) = -log(w * Pcred[cred_hour] + (1 - w) * Pdoor[door_hour]).

Usage:
    python models/access_anomaly/train.py simulate --out access_anomaly.onnx
    python models/access_anomaly/train.py retrain --csv access-events.csv --out site.onnx
The CSV is the access log's export (GET /api/v1/access-events?format=csv&result=granted&...):
columns ts, credential, door (others ignored); only granted swipes with a credential count.
Exit codes: 0 written, 2 bad input (names file, line and column), 1 anything else.
"""

from __future__ import annotations

import argparse
import bisect
import csv
import json
import math
import sys
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parent))
from traffic import Swipe, simulate

HOURS = 24
DEFAULT_BLEND = 0.7  # weight of the credential's own profile
DEFAULT_QUANTILE = 0.995
MIN_SWIPES = 50  # fewer than this and a profile is noise: refuse to train


class TrainingError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class TrainedModel:
    credentials: list[str]
    doors: list[str]
    cred_table: np.ndarray  # [(C+1) * 24] probabilities; row 0 = unknown (site profile)
    door_table: np.ndarray
    blend: float
    threshold: float
    quantile: float
    utc_offset_h: float
    swipes: int


def local_hour(ts: datetime, utc_offset_h: float) -> int:
    return int((ts + timedelta(hours=utc_offset_h)).hour)


def _profiles(keys: list[str], hours: dict[str, np.ndarray], site: np.ndarray) -> np.ndarray:
    site_p = (site + 1.0) / (site.sum() + HOURS)
    rows = [site_p]
    for key in keys:
        counts = hours[key]
        # Smoothed toward the site profile (a pseudo-count of 2 swipes spread like the site's).
        rows.append((counts + 2.0 * site_p) / (counts.sum() + 2.0))
    return np.concatenate(rows).astype(np.float32)


def fit(swipes: Iterable[Swipe], utc_offset_h: float = 8.0, blend: float = DEFAULT_BLEND,
        quantile: float = DEFAULT_QUANTILE) -> TrainedModel:
    by_cred: dict[str, np.ndarray] = {}
    by_door: dict[str, np.ndarray] = {}
    site = np.zeros(HOURS)
    samples: list[tuple[str, str, int]] = []
    for swipe in swipes:
        if swipe.result != "granted" or not swipe.credential:
            continue
        hour = local_hour(swipe.ts, utc_offset_h)
        by_cred.setdefault(swipe.credential, np.zeros(HOURS))[hour] += 1
        by_door.setdefault(swipe.door, np.zeros(HOURS))[hour] += 1
        site[hour] += 1
        samples.append((swipe.credential, swipe.door, hour))
    if len(samples) < MIN_SWIPES:
        raise TrainingError(f"only {len(samples)} granted swipes; need at least {MIN_SWIPES}")
    credentials, doors = sorted(by_cred), sorted(by_door)
    model = TrainedModel(credentials, doors, _profiles(credentials, by_cred, site),
                         _profiles(doors, by_door, site), blend, 0.0, quantile, utc_offset_h,
                         len(samples))
    scores = np.array([score(model, c, d, h) for c, d, h in samples])
    return replace(model, threshold=float(np.quantile(scores, quantile)))


def score(model: TrainedModel, credential: str, door: str, hour: int) -> float:
    """What the exported graph computes, in numpy (training and the model card use it)."""
    c = bisect_index(model.credentials, credential)
    d = bisect_index(model.doors, door)
    return -math.log(model.blend * float(model.cred_table[c * HOURS + hour])
                     + (1 - model.blend) * float(model.door_table[d * HOURS + hour]))


def bisect_index(vocabulary: list[str], key: str) -> int:
    """Row of ``key`` in a table (sorted vocabulary; row 0 = not in it)."""
    at = bisect.bisect_left(vocabulary, key)
    return at + 1 if at < len(vocabulary) and vocabulary[at] == key else 0


def export(model: TrainedModel, path: Path) -> None:
    w = float(model.blend)
    nodes = [
        helper.make_node("Gather", ["p_cred", "cred_hour"], ["pc"], axis=0),
        helper.make_node("Gather", ["p_door", "door_hour"], ["pd"], axis=0),
        helper.make_node("Mul", ["pc", "w_cred"], ["pcw"]),
        helper.make_node("Mul", ["pd", "w_door"], ["pdw"]),
        helper.make_node("Add", ["pcw", "pdw"], ["p"]),
        helper.make_node("Log", ["p"], ["logp"]),
        helper.make_node("Neg", ["logp"], ["score"]),
    ]
    inits = [
        numpy_helper.from_array(model.cred_table, "p_cred"),
        numpy_helper.from_array(model.door_table, "p_door"),
        numpy_helper.from_array(np.array(w, dtype=np.float32), "w_cred"),
        numpy_helper.from_array(np.array(1 - w, dtype=np.float32), "w_door"),
    ]
    graph = helper.make_graph(
        nodes, "access_anomaly",
        [helper.make_tensor_value_info("cred_hour", TensorProto.INT64, ["N"]),
         helper.make_tensor_value_info("door_hour", TensorProto.INT64, ["N"])],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, ["N"])],
        inits,
    )
    onnx_model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)],
                                   producer_name="gridsense models/access_anomaly")
    onnx_model.ir_version = 8  # readable by onnxruntime releases older than this onnx package
    meta = {
        "credentials": json.dumps(model.credentials), "doors": json.dumps(model.doors),
        "threshold": repr(model.threshold), "quantile": repr(model.quantile),
        "blend": repr(model.blend), "utc_offset_h": repr(model.utc_offset_h),
        "swipes": str(model.swipes), "hours": str(HOURS),
    }
    helper.set_model_props(onnx_model, meta)
    onnx.checker.check_model(onnx_model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(onnx_model, str(path))


def read_history(path: Path) -> list[Swipe]:
    """The access log's CSV export; errors name the file, line and column."""
    swipes: list[Swipe] = []
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing = {"ts", "credential", "door"} - set(reader.fieldnames or ())
        if missing:
            raise TrainingError(f"{path}:1: missing column(s) {', '.join(sorted(missing))}")
        for row in reader:
            try:
                ts = datetime.fromisoformat(row["ts"].replace("Z", "+00:00"))
            except ValueError:
                raise TrainingError(f"{path}:{reader.line_num}: ts: not an ISO time "
                                    f"({row['ts']!r})") from None
            if ts.tzinfo is None:
                raise TrainingError(f"{path}:{reader.line_num}: ts: needs a time zone")
            swipes.append(Swipe(ts, row["credential"].strip(), row["door"].strip(),
                                (row.get("result") or "granted").strip()))
    return swipes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sim = sub.add_parser("simulate", help="train on simulated community traffic")
    sim.add_argument("--days", type=int, default=28)
    sim.add_argument("--residents", type=int, default=200)
    sim.add_argument("--seed", type=int, default=7)
    re_ = sub.add_parser("retrain", help="train on a site's own access history (CSV export)")
    re_.add_argument("--csv", type=Path, required=True)
    for p in (sim, re_):
        p.add_argument("--out", type=Path, required=True, help="ONNX file to write")
        p.add_argument("--utc-offset-h", type=float, default=8.0, help="site's local time")
        p.add_argument("--quantile", type=float, default=DEFAULT_QUANTILE)
        p.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = parser.parse_args(argv)
    try:
        if args.command == "simulate":
            swipes: Iterable[Swipe] = simulate(args.days, args.residents, seed=args.seed,
                                               utc_offset_h=args.utc_offset_h)
        else:
            swipes = read_history(args.csv)
        model = fit(swipes, args.utc_offset_h, quantile=args.quantile)
    except (TrainingError, OSError) as exc:
        print(f"train: {exc}", file=sys.stderr)
        return 2
    export(model, args.out)
    summary = {"out": str(args.out), "swipes": model.swipes,
               "credentials": len(model.credentials), "doors": len(model.doors),
               "threshold": round(model.threshold, 4), "quantile": model.quantile}
    print(json.dumps(summary) if args.json else
          " ".join(f"{k}={v}" for k, v in summary.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
