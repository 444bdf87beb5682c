"""The registry: streets, communities, grids, points and staff; who sees what."""
