"""Development tooling shared by the tests, the benchmarks and the demo (never shipped)."""
