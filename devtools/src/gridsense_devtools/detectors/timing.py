"""A YOLOX-nano-sized ONNX network with random weights, for timing only (scripts/bench camera).

Same shape of work as YOLOX-nano (depthwise-separable CSP-style backbone at widths 24-384, a
three-level head at strides 8/16/32 with 80 classes, output [1, N, 85] in the YOLOX layout):
about 0.8 M parameters and 0.53 G multiply-accumulates at 416, like the real one
(0.91 M, "1.08 GFLOPs" = 0.54 G MACs). It detects nothing; it costs what a
nano-class detector costs, so inference and pipeline timings mean something without
downloading a model. ``build(size)`` returns the model, its MAC and parameter counts.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

CLASSES = 80
# Widths and depths chosen so parameters (~0.9 M) and multiply-accumulates at 416 (~0.5 G,
# YOLOX's "1.08 GFLOPs" counts two per MAC) are those of YOLOX-nano.
STEM = 24
STAGES = ((24, 48, 1), (48, 96, 3), (96, 192, 3), (192, 384, 2))
HEAD = 96


class _Net:
    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.macs = 0
        self.params = 0
        self._n = 0

    def _name(self, prefix: str) -> str:
        self._n += 1
        return f"{prefix}{self._n}"

    def conv(self, x: str, cin: int, cout: int, k: int, stride: int, hw: int,
             groups: int = 1, act: bool = True, bias: float = 0.0) -> tuple[str, int]:
        w = self._name("w")
        b = self._name("b")
        fan_in = cin // groups * k * k
        self.inits.append(numpy_helper.from_array(
            (self.rng.standard_normal((cout, cin // groups, k, k)) / np.sqrt(fan_in))
            .astype(np.float32), w))
        self.inits.append(numpy_helper.from_array(np.full(cout, bias, np.float32), b))
        out = self._name("t")
        self.nodes.append(helper.make_node("Conv", [x, w, b], [out], kernel_shape=[k, k],
                                           strides=[stride, stride], pads=[k // 2] * 4,
                                           group=groups))
        hw_out = hw // stride
        self.macs += hw_out * hw_out * cout * fan_in
        self.params += cout * fan_in + cout
        if act:  # SiLU, as YOLOX
            sig = self._name("t")
            self.nodes.append(helper.make_node("Sigmoid", [out], [sig]))
            act_out = self._name("t")
            self.nodes.append(helper.make_node("Mul", [out, sig], [act_out]))
            out = act_out
        return out, hw_out

    def dwsep(self, x: str, cin: int, cout: int, stride: int, hw: int) -> tuple[str, int]:
        x, hw = self.conv(x, cin, cin, 3, stride, hw, groups=cin)
        return self.conv(x, cin, cout, 1, 1, hw)[0], hw

    def block(self, x: str, c: int, hw: int) -> str:
        y = self.conv(x, c, c // 2, 1, 1, hw)[0]
        y, _ = self.dwsep(y, c // 2, c, 1, hw)
        out = self._name("t")
        self.nodes.append(helper.make_node("Add", [x, y], [out]))
        return out


def build(size: int = 416) -> tuple[onnx.ModelProto, int, int]:
    """(model, multiply-accumulates per inference, parameters)."""
    net = _Net()
    x, hw = net.conv("images", 3, STEM, 3, 2, size)
    features = []
    for cin, cout, blocks in STAGES:
        x, hw = net.dwsep(x, cin, cout, 2, hw)
        for _ in range(blocks):
            x = net.block(x, cout, hw)
        features.append((x, cout, hw))
    outputs = []
    for feature, channels, level_hw in features[1:]:  # strides 8, 16, 32
        stem = net.conv(feature, channels, HEAD, 1, 1, level_hw)[0]
        cls, _ = net.dwsep(stem, HEAD, HEAD, 1, level_hw)
        cls, _ = net.dwsep(cls, HEAD, HEAD, 1, level_hw)
        reg, _ = net.dwsep(stem, HEAD, HEAD, 1, level_hw)
        reg, _ = net.dwsep(reg, HEAD, HEAD, 1, level_hw)
        box = net.conv(reg, HEAD, 4, 1, 1, level_hw, act=False)[0]
        # Objectness biased low (as a trained model on an empty scene): random weights would
        # otherwise "detect" hundreds of boxes a frame and time NMS instead of the model.
        objectness = net.conv(reg, HEAD, 1, 1, 1, level_hw, act=False, bias=-8.0)[0]
        scores = net.conv(cls, HEAD, CLASSES, 1, 1, level_hw, act=False)[0]
        probs = net._name("t")  # as a YOLOX export: objectness and classes through a sigmoid
        net.nodes.append(helper.make_node("Sigmoid", [objectness], [probs + "o"]))
        net.nodes.append(helper.make_node("Sigmoid", [scores], [probs + "c"]))
        level = net._name("t")
        net.nodes.append(helper.make_node("Concat", [box, probs + "o", probs + "c"], [level],
                                          axis=1))
        flat = net._name("t")
        shape = net._name("s")
        net.inits.append(numpy_helper.from_array(np.array([1, 5 + CLASSES, -1], np.int64),
                                                 shape))
        net.nodes.append(helper.make_node("Reshape", [level, shape], [flat]))
        outputs.append(flat)
    joined = net._name("t")
    net.nodes.append(helper.make_node("Concat", outputs, [joined], axis=2))
    net.nodes.append(helper.make_node("Transpose", [joined], ["output"], perm=[0, 2, 1]))
    n = sum((size // s) ** 2 for s in (8, 16, 32))
    graph = helper.make_graph(
        net.nodes, "yolox_nano_sized",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, n, 5 + CLASSES])],
        net.inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model, net.macs, net.params
