"""Device drivers: each folder here registers its config model and factory with ``DRIVERS``,
imported when a config names its type (``DRIVERS.index``) or when every type is asked for."""

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

__all__ = [
    "DRIVERS", "CommandReply", "DeviceConfigBase", "DownlinkHandler", "Driver", "DriverContext",
    "ReadingSink", "SharedResources",
]
