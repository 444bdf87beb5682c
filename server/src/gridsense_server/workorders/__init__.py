"""Work orders: incidents from edge events, their state machine, noise control and snapshots."""
