"""What the dashboard tests send through a real broker: every series the dashboards chart."""

from __future__ import annotations

from datetime import timedelta

from server_helpers import EdgePublisher

from gridsense_protocol import AccessEvent, AccessResult, Health, utc_now

# The server's lifecycle for these tests: every incident past its accept deadline at once.
OVERDUE_AT_ONCE = {"sla": {"accept_s": 0.001}}


def drive_every_series(edge: EdgePublisher) -> None:
    """What the dashboards chart, sent as a gateway would: temperatures of two points, camera
    detections, door events granted and refused, a health message, an incident (overdue at
    once under ``OVERDUE_AT_ONCE``, and paged), and a message that is dead-lettered."""
    now = utc_now()
    edge.publish(edge.telemetry([
        ("gw-01.boiler", "temperature", 55.0, now - timedelta(seconds=2)),
        ("gw-01.boiler", "temperature", 61.5, now - timedelta(seconds=1)),
        ("gw-01.pump", "temperature", 35.0, now - timedelta(seconds=1)),
        ("gw-01.pump", "detections", 2.0, now - timedelta(seconds=1)),
    ]))
    for result, seconds in ((AccessResult.GRANTED, 3), (AccessResult.DENIED, 2)):
        edge.publish(AccessEvent(gateway=edge.gateway, seq=edge.next_seq(),
                                 ts=now - timedelta(seconds=seconds), point="gw-01.boiler",
                                 door="b1-main", result=result, method="card",
                                 reason=None if result is AccessResult.GRANTED else "unknown"))
    edge.publish(Health(gateway=edge.gateway, seq=edge.next_seq(), ts=now, uptime_s=60.0,
                        cpu_percent=2.5, memory_rss_bytes=31_000_000, disk_free_bytes=10**9))
    edge.publish(edge.incident("gw-01.boiler", ts=now, value=61.5))
    edge.publish_raw(f"gridsense/v1/{edge.gateway}/telemetry", b"not json")
