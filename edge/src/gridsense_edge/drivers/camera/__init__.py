"""Cameras: capture, motion gating, ONNX detection, tracking, zones and rules (``camera``).

OpenCV and onnxruntime are imported only when a camera pipeline starts, so a gateway without
a camera does not pay their memory.
"""

from . import driver as driver  # registers the ``camera`` device type
