"""Commissioning: after a gateway is installed, the server checks that each of its points has
readings and that a drill page reaches the installer, and reports it (JSON and a printable
page). Drills are marked incidents, kept out of SLA statistics and the board."""

from .drill import DRILL_TYPE
from .service import CommissionError, Commissioning

__all__ = ["DRILL_TYPE", "CommissionError", "Commissioning"]
