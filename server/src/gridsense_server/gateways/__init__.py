"""Gateways: online/offline status, health and the views of them."""
