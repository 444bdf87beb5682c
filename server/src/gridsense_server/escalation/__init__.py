"""Escalation up the grid hierarchy: policies as data, durable steps, recipients by role."""
