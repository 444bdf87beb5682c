"""Remote configuration: a version pushed by the server is validated, applied, health-checked
within a window and rolled back by the gateway itself when it fails (docs/architecture.md)."""
