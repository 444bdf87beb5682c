"""``gridsense-edge install-service``: a hardened systemd unit for the agent."""

from .command import register

__all__ = ["register"]
