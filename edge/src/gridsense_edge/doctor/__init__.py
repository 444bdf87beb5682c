"""``gridsense-edge doctor``: check what a gateway needs, and say how to fix each fault."""

from .command import register

__all__ = ["register"]
