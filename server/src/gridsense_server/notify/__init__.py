"""Notifications: the delivery log, its sender, channels, rate limits, signed links."""
