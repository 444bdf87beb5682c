"""1-Wire DS18B20 thermometers through the kernel's w1 sysfs files (``onewire_temperature``)."""

from . import driver as driver  # registers the ``onewire_temperature`` device type
