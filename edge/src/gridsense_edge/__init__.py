"""gridsense-edge: the gateway agent (device drivers, local rules, MQTT uplink)."""

from __future__ import annotations


def agent_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("gridsense-edge")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "0+unknown"
