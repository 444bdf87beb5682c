"""QR scanners mounted at a door (``qr_serial``, ``qr_hid``): they read electronic passes and
present them at the door of an OSDP reader on the same gateway, whose lock and LED answer.

pyserial is the serial scanner's only library; the keyboard-mode scanner reads the kernel's
input events itself (no python-evdev needed).
"""

from . import hid_scanner as hid_scanner  # registers ``qr_hid``
from . import serial_scanner as serial_scanner  # registers ``qr_serial``
