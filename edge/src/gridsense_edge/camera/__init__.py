"""Cameras at the edge: capture, motion gating, ONNX detection, tracking, zones and rules.

Nothing here imports OpenCV or onnxruntime at module level: a gateway without a camera must
not pay their memory. The heavy imports happen when a camera pipeline starts.
"""
