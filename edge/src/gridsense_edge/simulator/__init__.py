"""Simulated field devices that speak the real wire protocols, for tests and the demo.

The edge's drivers are only believable if they are exercised against the bytes a real device
sends, faults included; these simulators produce those bytes on pseudo-terminals.
"""

from gridsense_edge.simulator.modbus import ModbusSensorSimulator, SimulatedSensor
from gridsense_edge.simulator.null_modem import FAULT_MODES, FaultMode

__all__ = ["FAULT_MODES", "FaultMode", "ModbusSensorSimulator", "SimulatedSensor"]
