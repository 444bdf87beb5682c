"""Remote configuration of gateways: versions with their history, validated here with the
gateway's own schema, pushed on the retained ``config`` topic, and what each gateway reports
of applying them (docs/architecture.md, docs/operations.md)."""
