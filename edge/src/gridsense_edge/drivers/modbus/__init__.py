"""Modbus RTU temperature sensors on RS-485 buses (``modbus_temperature``)."""

from . import temperature as temperature  # registers the ``modbus_temperature`` device type
