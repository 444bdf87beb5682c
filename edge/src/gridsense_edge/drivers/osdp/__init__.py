"""OSDP card readers and their doors (``osdp_reader``): decisions from a local credential copy.

libosdp, pyserial and onnxruntime are imported only when a reader is configured.
"""

from . import driver as driver  # registers the ``osdp_reader`` device type
