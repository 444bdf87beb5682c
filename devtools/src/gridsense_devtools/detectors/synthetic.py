"""Build small ONNX detectors that really find the synthetic test figures, in every layout.

No training and no torch: the graph computes colour evidence per class from the pixels
(a 1x1 Conv onto each class colour's chroma direction, clipped to [0, 1]), pools it over 8x8
cells (the score of a cell), and estimates each object's box from the first and second moments
of that evidence in a window around the cell (a solid rectangle of width w has variance
w^2/12). Cells near an object's centre score highest, so NMS keeps a well-centred box. The
result is emitted in the layout under test:

- ``yolo``:  [1, 4+nc, N]  cx, cy, w, h (input pixels) then one score per class (v8/v9/v11)
- ``yolox``: [1, N, 5+nc]  raw YOLOX head: (tx, ty, tw, th) in grid units at strides 8/16/32,
  objectness and class probabilities (export with decode_in_inference=False)
- ``ssd``:   [K, 6]        x1, y1, x2, y2 (0..1), score, class id, best K first

The input is [1, 3, S, S] float RGB scaled to 0..1, as the model card written beside it says.
Usage: ``python -m gridsense_devtools.detectors.synthetic --layout yolo --size 320 out.onnx``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

LAYOUTS = ("yolo", "yolox", "ssd")
# BGR colours of the figures (gridsense_edge.simulator.video.CLASS_COLOURS), class order = ids.
LABELS = ["person", "bicycle", "car"]
COLOURS_BGR = {"person": (40, 40, 230), "bicycle": (230, 60, 40), "car": (40, 200, 40)}
CELL = 8
EPS = 1e-6


class _Graph:
    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self._n = 0

    def const(self, value: np.ndarray | float, name: str | None = None) -> str:
        self._n += 1
        name = name or f"c{self._n}"
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype=np.float32)
                                                  if not isinstance(value, np.ndarray)
                                                  or value.dtype != np.int64 else value, name))
        return name

    def op(self, op_type: str, *inputs: str, **attrs: object) -> str:
        self._n += 1
        out = f"t{self._n}"
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], **attrs))
        return out

    def ints(self, values: list[int]) -> str:
        return self.const(np.array(values, dtype=np.int64))


def _class_weights(labels: list[str]) -> tuple[np.ndarray, np.ndarray]:
    weights = np.zeros((len(labels), 3, 1, 1), dtype=np.float32)
    for k, label in enumerate(labels):
        b, g, r = COLOURS_BGR[label]
        rgb = np.array([r, g, b], dtype=np.float32) / 255.0
        chroma = rgb - rgb.mean()
        # projection 1.0 for the class colour, 0 for any grey; evidence = clip(2p - 1, 0, 1)
        weights[k, :, 0, 0] = 2.0 * chroma / float(chroma @ chroma)
    return weights, -np.ones(len(labels), dtype=np.float32)


def _core(g: _Graph, size: int, labels: list[str], window: int) -> tuple[str, str, str, str,
                                                                          str, int]:
    """Shared part: returns (scores [1,C,G,G], cx, cy, w, h [1,1,G,G]) and G."""
    nc = len(labels)
    grid = size // CELL
    w, b = _class_weights(labels)
    evidence = g.op("Clip", g.op("Conv", "images", g.const(w), g.const(b)), g.const(0.0),
                    g.const(1.0))
    coords = np.arange(size, dtype=np.float32) + 0.5
    xs = np.broadcast_to(coords[None, :], (size, size))[None, None].copy()
    ys = np.broadcast_to(coords[:, None], (size, size))[None, None].copy()
    x, y = g.const(xs), g.const(ys)
    moments = g.op("Concat", evidence, g.op("Mul", evidence, x), g.op("Mul", evidence, y),
                   g.op("Mul", evidence, g.op("Mul", x, x)),
                   g.op("Mul", evidence, g.op("Mul", y, y)), axis=1)
    cells = g.op("AveragePool", moments, kernel_shape=[CELL, CELL], strides=[CELL, CELL])
    half = window // 2
    win = g.op("AveragePool", cells, kernel_shape=[window, window], strides=[1, 1],
               pads=[half, half, half, half], count_include_pad=1)
    density = g.op("Slice", cells, g.ints([0]), g.ints([nc]), g.ints([1]))
    parts = [g.op("Slice", win, g.ints([i * nc]), g.ints([(i + 1) * nc]), g.ints([1]))
             for i in range(5)]
    mass = g.op("Add", parts[0], g.const(EPS))
    cx, cy = g.op("Div", parts[1], mass), g.op("Div", parts[2], mass)

    def extent(second: str, mean: str) -> str:
        var = g.op("Sub", g.op("Div", second, mass), g.op("Mul", mean, mean))
        return g.op("Sqrt", g.op("Relu", g.op("Mul", var, g.const(12.0))))

    bw, bh = extent(parts[3], cx), extent(parts[4], cy)
    # Centredness: a cell near its object's centre sees the whole object in its window.
    centres = (np.arange(grid, dtype=np.float32) + 0.5) * CELL
    gx = g.const(np.broadcast_to(centres[None, :], (grid, grid))[None, None].copy())
    gy = g.const(np.broadcast_to(centres[:, None], (grid, grid))[None, None].copy())

    def off(centre: str, mean: str, span: str) -> str:
        return g.op("Div", g.op("Abs", g.op("Sub", centre, mean)),
                    g.op("Add", g.op("Mul", span, g.const(0.5)), g.const(1.0)))

    centred = g.op("Clip", g.op("Sub", g.const(1.0),
                                g.op("Mul", g.op("Add", off(gx, cx, bw), off(gy, cy, bh)),
                                     g.const(0.5))), g.const(0.0), g.const(1.0))
    scores = g.op("Mul", density, centred)
    # One box per cell: that of the class whose evidence dominates the cell.
    weight = g.op("Div", density, g.op("Add", g.op("ReduceSum", density, g.ints([1]),
                                                   keepdims=1), g.const(EPS)))

    def pick(value: str) -> str:
        return g.op("ReduceSum", g.op("Mul", value, weight), g.ints([1]), keepdims=1)

    return scores, pick(cx), pick(cy), pick(bw), pick(bh), grid


def build(layout: str, size: int = 320, labels: list[str] | None = None, window: int = 11,
          top_k: int = 50) -> onnx.ModelProto:
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}")
    if size % 32:
        raise ValueError("size must be a multiple of 32")
    labels = labels or LABELS
    nc = len(labels)
    g = _Graph()
    scores, cx, cy, bw, bh, grid = _core(g, size, labels, window)
    n = grid * grid
    if layout == "yolo":
        flat = g.ints([1, -1, n])
        boxes = g.op("Concat", cx, cy, bw, bh, axis=1)
        out = g.op("Concat", g.op("Reshape", boxes, flat), g.op("Reshape", scores, flat), axis=1)
        shape = [1, 4 + nc, n]
    elif layout == "yolox":
        flat = g.ints([1, -1, n])
        cols = g.const(np.broadcast_to(np.arange(grid, dtype=np.float32)[None, :],
                                       (grid, grid))[None, None].copy())
        rows = g.const(np.broadcast_to(np.arange(grid, dtype=np.float32)[:, None],
                                       (grid, grid))[None, None].copy())
        stride = g.const(float(CELL))
        tx = g.op("Sub", g.op("Div", cx, stride), cols)
        ty = g.op("Sub", g.op("Div", cy, stride), rows)
        tw = g.op("Log", g.op("Add", g.op("Div", bw, stride), g.const(EPS)))
        th = g.op("Log", g.op("Add", g.op("Div", bh, stride), g.const(EPS)))
        obj = g.op("ReduceMax", scores, axes=[1], keepdims=1)
        cls = g.op("Div", scores, g.op("Add", obj, g.const(EPS)))
        level8 = g.op("Reshape", g.op("Concat", tx, ty, tw, th, obj, cls, axis=1), flat)
        coarse = (size // 16) ** 2 + (size // 32) ** 2  # levels this model leaves empty
        empty = g.const(np.zeros((1, 5 + nc, coarse), dtype=np.float32))
        out = g.op("Transpose", g.op("Concat", level8, empty, axis=2), perm=[0, 2, 1])
        shape = [1, n + coarse, 5 + nc]
    else:
        k = min(top_k, n)
        best = g.op("Reshape", g.op("ReduceMax", scores, axes=[1], keepdims=0), g.ints([n]))
        cls = g.op("Cast", g.op("Reshape", g.op("ArgMax", scores, axis=1, keepdims=0),
                                g.ints([n])), to=TensorProto.FLOAT)
        top = helper.make_node("TopK", [best, g.ints([k])], ["top_scores", "top_idx"], axis=0)
        g.nodes.append(top)
        half = g.const(0.5)
        scale = g.const(1.0 / size)

        def corner(centre: str, span: str, sign: str) -> str:
            value = g.op(sign, centre, g.op("Mul", span, half))
            return g.op("Mul", g.op("Reshape", value, g.ints([n, 1])), scale)

        table = g.op("Concat", corner(cx, bw, "Sub"), corner(cy, bh, "Sub"),
                     corner(cx, bw, "Add"), corner(cy, bh, "Add"),
                     g.op("Reshape", best, g.ints([n, 1])), g.op("Reshape", cls, g.ints([n, 1])),
                     axis=1)
        out = g.op("Gather", table, "top_idx", axis=0)
        shape = [k, 6]
    g.nodes.append(helper.make_node("Identity", [out], ["output"]))
    graph = helper.make_graph(
        g.nodes, f"synthetic_{layout}",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, shape)], g.inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="gridsense synthetic_detector")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def card_text(layout: str, size: int, labels: list[str]) -> str:
    """The model card the edge reads beside the model (``<model>.card.yaml``)."""
    return (
        f"name: synthetic-{layout}-{size}\n"
        "license: Apache-2.0 (generated by gridsense; no training data)\n"
        f"format: {layout}\n"
        f"input: {{width: {size}, height: {size}, color: rgb, scale: 0.00392156862745098}}\n"
        f"labels: [{', '.join(labels)}]\n"
    )


def write(path: Path, layout: str, size: int = 320, labels: list[str] | None = None) -> Path:
    """Write ``path`` (the model) and ``<path stem>.card.yaml`` beside it."""
    labels = labels or LABELS
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(build(layout, size, labels), str(path))
    path.with_suffix(".card.yaml").write_text(card_text(layout, size, labels), encoding="utf-8")
    return path


def model_in(folder: Path, layout: str, size: int = 320) -> Path:
    """``folder``'s model of that layout and size, written on first use."""
    path = folder / f"synthetic-{layout}-{size}.onnx"
    return path if path.exists() else write(path, layout, size)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--layout", choices=LAYOUTS, default="yolo")
    parser.add_argument("--size", type=int, default=320, help="input side, a multiple of 32")
    parser.add_argument("output", type=Path, help="where to write the .onnx (card beside it)")
    args = parser.parse_args(argv)
    write(args.output, args.layout, args.size)
    print(f"wrote {args.output} and {args.output.with_suffix('.card.yaml')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
