"""``gridsense-edge enroll``: join a deployment with a one-time code (key, request, trust on
first contact by the CA's fingerprint, credentials and config stored 0600)."""

from .command import register

__all__ = ["register"]
