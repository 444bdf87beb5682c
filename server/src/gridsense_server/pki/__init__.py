"""The deployment CA: made on first run, it issues the certificates of the broker, the web
server and the gateways, so a deployment needs no outside authority to speak TLS."""

from .ca import CaError, DeploymentCA, Issued

__all__ = ["CaError", "DeploymentCA", "Issued"]
