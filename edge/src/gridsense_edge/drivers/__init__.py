"""Device drivers: each folder here registers its config model and factory with ``DRIVERS``."""

from .base import (
    DRIVERS,
    CommandReply,
    DeviceConfigBase,
    DownlinkHandler,
    Driver,
    DriverContext,
    ReadingSink,
    SharedResources,
)

DRIVERS.load()

__all__ = [
    "DRIVERS", "CommandReply", "DeviceConfigBase", "DownlinkHandler", "Driver", "DriverContext",
    "ReadingSink", "SharedResources",
]
