"""The ingest fuzzer as a test: a few thousand hostile payloads through a real Mosquitto into a
real server process, database and InfluxDB; every message applied or dead-lettered and counted
by reason, every canary applied, the server alive and not down. ``scripts/fuzz_ingest.py``
runs the same code with 100,000 (docs/security.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gridsense_devtools.fuzz_ingest import fuzz_stack, run_fuzz
from gridsense_devtools.fuzz_report import broken_invariants, table
from gridsense_devtools.services import InfluxDB

PAYLOADS = 3000


@pytest.mark.timeout(240)
@pytest.mark.parametrize("db_kind", ["sqlite", pytest.param("postgres",
                                                            marks=pytest.mark.postgres)])
def test_hostile_payloads_are_each_applied_or_dead_lettered_and_ingest_never_stalls(
    db_kind: str, tmp_path: Path, influx: tuple[InfluxDB, str], request: pytest.FixtureRequest
) -> None:
    db_url = request.getfixturevalue("pg_url") if db_kind == "postgres" else None
    with fuzz_stack(tmp_path, influx, db_url) as (server, broker, influxdb, database, url):
        run = run_fuzz(server, broker, influxdb, database, url, count=PAYLOADS, seed=20261203,
                       chunk=250, stall_s=60)
    print(table(run))
    assert broken_invariants(run) == []
    assert run.sent == PAYLOADS and run.canaries == PAYLOADS // 250
    counters = run.counters
    # The mix reaches every outcome: applied (every kind), refused at decode (every class),
    # refused for its time (both bounds).
    assert counters["ingest.outcome.applied"] > 2 * run.canaries
    assert {"bad_field", "malformed_json", "bad_topic", "oversized",
            "gateway_mismatch"} <= set(run.expected_invalid)
    assert counters.get("ingest.refused.clock_ahead", 0) > 0
    assert counters.get("ingest.refused.too_old", 0) > 0
    assert {"telemetry", "incident", "status", "health", "cmd/result", "access",
            "snapshot"} <= {k.removeprefix("ingest.received.") for k in counters
                            if k.startswith("ingest.received.")}
    assert counters.get("influx.written_lines", 0) > 0
