"""Site plans: a plan image per community, the places of its points and gateways on it, and
the state each marker is coloured by."""
