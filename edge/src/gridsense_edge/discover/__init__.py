"""``gridsense-edge discover``: find the serial ports, Modbus sensors, OSDP readers and cameras
on a gateway, and draft its configuration."""

from .command import register

__all__ = ["register"]
