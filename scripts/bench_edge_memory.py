"""scripts/bench edge-memory: what the edge agent's resident memory is made of.

Runs the edge-rss scenario (ten Modbus sensors, as installed) with an agent that writes down the
modules it holds once it is running, then imports those modules in fresh interpreters (after
``malloc_trim``, so only what stays resident counts):

  all              every module the running agent holds (its state excluded)
  without-pydantic the same without pydantic and the gridsense packages: what is left to an
                   agent whose messages and configuration do not use pydantic
  extras           each optional extra on top of ``all``: onnxruntime (and the temperature
                   model's session), numpy and OpenCV, cryptography (one Ed25519 pass checked)

One JSON line per figure. Never part of the tests.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MODEL = REPO / "models" / "temperature_anomaly" / "temperature_anomaly.onnx"
NOT_PYDANTIC = ("pydantic", "annotated_types", "typing_inspection", "gridsense_")


def resident_mb() -> float:
    import ctypes
    import gc

    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    with open("/proc/self/smaps_rollup") as rollup:
        kb = next(int(line.split()[1]) for line in rollup if line.startswith("Rss:"))
    return kb / 1024


def run_agent(dump: Path, after_s: float, argv: list[str]) -> int:
    """The agent as ``gridsense-edge``, writing its module list after ``after_s`` seconds."""

    def write_modules() -> None:
        time.sleep(after_s)
        dump.write_text(json.dumps(sorted(sys.modules)))

    threading.Thread(target=write_modules, daemon=True).start()
    from gridsense_edge.cli import main

    return main(argv)


def extra(name: str) -> None:
    if name == "onnxruntime":
        import onnxruntime

        onnxruntime.InferenceSession(str(MODEL), providers=["CPUExecutionProvider"])
    elif name == "opencv":
        import cv2  # noqa: F401
    elif name == "cryptography":
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        key = Ed25519PrivateKey.generate()
        key.public_key().verify(key.sign(b"pass"), b"pass")


def measure(modules: Path, skip: tuple[str, ...], then: str | None) -> None:
    import importlib

    for name in json.loads(modules.read_text()):
        if name != "__main__" and not name.startswith(skip):
            with contextlib.suppress(Exception):  # a module importable only in its own context
                importlib.import_module(name)
    before = resident_mb()
    if then is not None:
        extra(then)
    print(json.dumps({"mb": round(before, 1),
                      "extra_mb": round(resident_mb() - before, 1) if then else None}))


def in_fresh_interpreter(modules: Path, skip: tuple[str, ...] = (),
                         then: str | None = None) -> dict[str, float]:
    argv = [sys.executable, __file__, "measure", str(modules), "--skip", ",".join(skip)]
    done = subprocess.run([*argv, *(["--then", then] if then else [])], capture_output=True,
                          text=True, check=True, timeout=600)
    return dict(json.loads(done.stdout.splitlines()[-1]))


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "agent":
        return run_agent(Path(sys.argv[2]), float(sys.argv[3]), sys.argv[4:])
    parser = argparse.ArgumentParser(prog="scripts/bench edge-memory",
                                     description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("what", nargs="?", default="bench", choices=["bench", "measure"])
    parser.add_argument("modules", nargs="?", type=Path)
    parser.add_argument("--skip", default="")
    parser.add_argument("--then", choices=["onnxruntime", "opencv", "cryptography"])
    args = parser.parse_args()
    if args.what == "measure":
        measure(args.modules, tuple(p for p in args.skip.split(",") if p), args.then)
        return 0

    sys.path.insert(0, str(Path(__file__).parent))
    import bench

    with tempfile.TemporaryDirectory(prefix="gridsense-edge-memory-") as tmp:
        modules = Path(tmp) / "modules.json"
        bench.bench_edge_rss(5, 10, launcher=[sys.executable, __file__, "agent",
                                              str(modules), "12"])
        held = json.loads(modules.read_text())
        bench.report("edge-memory", part="modules held by the running agent", count=len(held))
        everything = in_fresh_interpreter(modules)
        bench.report("edge-memory", part="all", mb=everything["mb"])
        lean = in_fresh_interpreter(modules, NOT_PYDANTIC)
        bench.report("edge-memory", part="without pydantic and gridsense", mb=lean["mb"])
        for name in ("onnxruntime", "opencv", "cryptography"):
            try:
                figure = in_fresh_interpreter(modules, then=name)
            except subprocess.CalledProcessError as exc:
                bench.report("edge-memory", part=f"extra {name}", error=exc.stderr[-300:])
                continue
            bench.report("edge-memory", part=f"extra {name}", mb=figure["extra_mb"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
