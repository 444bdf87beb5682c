"""Escalation up the grid hierarchy: due steps executed, recipients found by role."""
