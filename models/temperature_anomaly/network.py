"""A small multilayer perceptron in numpy, and its export to ONNX with the ``onnx`` package.

Inputs are squashed (sign(x)·log(1+|x|): a fire's hundreds of degrees and a fridge's tenths
stay in one range), standardised, then two ReLU layers give one log-odds score. The squashing
and the standardisation are part of the graph, so the edge feeds raw features.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HIDDEN = (32, 16)


@dataclass
class Network:
    mean: np.ndarray  # of the squashed features
    std: np.ndarray
    weights: list[np.ndarray]
    biases: list[np.ndarray]

    def logits(self, features: np.ndarray) -> np.ndarray:
        h = (squash(features) - self.mean) / self.std
        for w, b in zip(self.weights[:-1], self.biases[:-1], strict=True):
            h = np.maximum(h @ w + b, 0.0)
        return (h @ self.weights[-1] + self.biases[-1]).reshape(-1)


def squash(x: np.ndarray) -> np.ndarray:
    return (np.sign(x) * np.log1p(np.abs(x))).astype(np.float32)


def fit(features: np.ndarray, labels: np.ndarray, weights: np.ndarray, rng: np.random.Generator,
        epochs: int = 12, batch: int = 2048, lr: float = 2e-3) -> Network:
    """Weighted logistic loss, Adam; deterministic for ``rng``."""
    z = squash(features)
    net = Network(z.mean(axis=0), z.std(axis=0) + 1e-3, [], [])
    sizes = (features.shape[1], *HIDDEN, 1)
    for a, b in pairwise(sizes):
        net.weights.append((rng.normal(0, np.sqrt(2.0 / a), (a, b))).astype(np.float32))
        net.biases.append(np.zeros(b, np.float32))
    params = [*net.weights, *net.biases]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    x_all = ((z - net.mean) / net.std).astype(np.float32)
    step = 0
    for _ in range(epochs):
        order = rng.permutation(len(x_all))
        for start in range(0, len(order), batch):
            idx = order[start:start + batch]
            grads = _gradients(net, x_all[idx], labels[idx], weights[idx])
            step += 1
            for k, (p, g) in enumerate(zip(params, grads, strict=True)):
                m[k] = 0.9 * m[k] + 0.1 * g
                v[k] = 0.999 * v[k] + 0.001 * g * g
                p -= lr * (m[k] / (1 - 0.9**step)) / (np.sqrt(v[k] / (1 - 0.999**step)) + 1e-8)
    return net


def _gradients(net: Network, x: np.ndarray, y: np.ndarray, w: np.ndarray) -> list[np.ndarray]:
    acts = [x]
    for wt, b in zip(net.weights[:-1], net.biases[:-1], strict=True):
        acts.append(np.maximum(acts[-1] @ wt + b, 0.0))
    logit = (acts[-1] @ net.weights[-1] + net.biases[-1]).reshape(-1)
    p = 1.0 / (1.0 + np.exp(-np.clip(logit, -30, 30)))
    delta = ((p - y) * w / w.sum()).astype(np.float32)[:, None]
    gw: list[np.ndarray] = []
    gb: list[np.ndarray] = []
    for layer in range(len(net.weights) - 1, -1, -1):
        gw.insert(0, acts[layer].T @ delta)
        gb.insert(0, delta.sum(axis=0))
        if layer:
            delta = (delta @ net.weights[layer].T) * (acts[layer] > 0)
    return [*gw, *gb]


def export(net: Network, path: Path, metadata: dict[str, object]) -> None:
    f = len(net.mean)
    inits = [numpy_helper.from_array(np.array(1.0, np.float32), "one"),
             numpy_helper.from_array(net.mean.astype(np.float32), "mean"),
             numpy_helper.from_array(net.std.astype(np.float32), "std")]
    nodes = [helper.make_node("Abs", ["features"], ["abs"]),
             helper.make_node("Add", ["abs", "one"], ["abs1"]),
             helper.make_node("Log", ["abs1"], ["mag"]),
             helper.make_node("Sign", ["features"], ["sign"]),
             helper.make_node("Mul", ["sign", "mag"], ["squashed"]),
             helper.make_node("Sub", ["squashed", "mean"], ["centred"]),
             helper.make_node("Div", ["centred", "std"], ["h0"])]
    last = "h0"
    for k, (w, b) in enumerate(zip(net.weights, net.biases, strict=True)):
        inits += [numpy_helper.from_array(w.astype(np.float32), f"w{k}"),
                  numpy_helper.from_array(b.astype(np.float32), f"b{k}")]
        nodes += [helper.make_node("MatMul", [last, f"w{k}"], [f"m{k}"]),
                  helper.make_node("Add", [f"m{k}", f"b{k}"], [f"a{k}"])]
        last = f"a{k}"
        if k < len(net.weights) - 1:
            nodes.append(helper.make_node("Relu", [last], [f"h{k + 1}"]))
            last = f"h{k + 1}"
    inits.append(numpy_helper.from_array(np.array([-1], np.int64), "flat"))
    nodes.append(helper.make_node("Reshape", [last, "flat"], ["score"]))
    graph = helper.make_graph(
        nodes, "temperature_anomaly",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", f])],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, ["N"])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)],
                              producer_name="gridsense models/temperature_anomaly")
    model.ir_version = 8  # readable by onnxruntime releases older than this onnx package
    helper.set_model_props(model, {k: v if isinstance(v, str) else json.dumps(v)
                                   for k, v in metadata.items()})
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
