"""On-site work from the grid worker's phone: check-in labels, photos, replay-safe actions."""
