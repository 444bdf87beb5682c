"""A snapshot follows its incident through the durable outbox: incident lane, binary intact,
numbered right after it, unchanged when replayed as backfill, still there after a restart."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from gridsense_edge.events import IncidentEvent
from gridsense_edge.transport.outbox import INCIDENT, OutboxLimits, SqliteOutbox
from gridsense_edge.transport.publisher import Publisher, mark_backfill
from gridsense_protocol import AlarmState, Incident, Severity, decode, snapshot_seq, utc_now


def test_the_snapshot_is_stored_with_its_incident_and_survives_a_restart(tmp_path: Path) -> None:
    jpeg = cv2.imencode(".jpg", np.full((48, 64, 3), 200, np.uint8))[1].tobytes()
    outbox = SqliteOutbox(tmp_path, OutboxLimits())
    publisher = Publisher("gw-1", outbox)
    event = IncidentEvent(point="cam-1", type="intrusion", severity=Severity.MAJOR,
                          state=AlarmState.ACTIVE, ts=utc_now(), value=1.0, threshold=None,
                          unit="objects", message="person in zone restricted")
    incident = publisher.incident(event, {"zone": "restricted"}, has_snapshot=True)
    snapshot = publisher.snapshot(incident.event_id, jpeg)
    outbox.close()  # as a kill after the incident was raised: both are on disk already

    reopened = SqliteOutbox(tmp_path, OutboxLimits())
    try:
        rows = reopened.claim(10)
        assert [r.seq for r in rows] == [incident.seq, incident.seq + 1]
        assert {r.lane for r in rows} == {INCIDENT}
        stored = rows[1]
        assert stored.topic == f"gridsense/v1/gw-1/snapshot/{incident.event_id}"
        assert stored.payload == snapshot.payload and snapshot_seq(stored.payload) == stored.seq
        assert mark_backfill(stored.payload) == stored.payload  # no envelope to flag
        decoded_incident = decode(rows[0].topic, rows[0].payload)
        assert isinstance(decoded_incident, Incident) and decoded_incident.has_snapshot
        decoded = decode(stored.topic, stored.payload)
        image = cv2.imdecode(np.frombuffer(decoded.jpeg, np.uint8), cv2.IMREAD_COLOR)  # type: ignore[union-attr]
        assert image is not None and image.shape == (48, 64, 3)
    finally:
        reopened.close()
