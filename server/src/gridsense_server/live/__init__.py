"""Live updates: incident changes pushed to WebSocket subscribers."""
