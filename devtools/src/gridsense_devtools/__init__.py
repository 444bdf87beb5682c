"""Development tooling shared by the tests, the benchmarks and the demo (never shipped).

It runs in the workspace's development environment: the camera scene and the detectors use
gridsense-edge's camera extra and the dev group's onnx.
"""
