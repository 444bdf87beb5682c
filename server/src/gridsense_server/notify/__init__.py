"""Notifications: the delivery log (durable outbox), channels, rate limits, signed links."""
