"""Which dotted counter becomes which Prometheus metric. These names are a published interface
(docs/operations.md, the Grafana dashboards): a rename is a breaking change.
"""

from __future__ import annotations

from dataclasses import dataclass

PREFIX = "gridsense"


@dataclass(frozen=True, slots=True)
class Family:
    """Counters ``<prefix><label value>`` (one label) or ``<prefix><a>.<b>`` (two labels, the
    second after the last dot) gathered into one labelled metric."""

    prefix: str
    name: str
    labels: tuple[str, ...]
    help: str


LABELLED: tuple[Family, ...] = (
    Family("ingest.received.", "ingest_messages", ("kind",),
           "MQTT messages routed by the ingest, by message kind"),
    Family("ingest.invalid.", "ingest_invalid", ("reason",),
           "messages that could not be decoded, by reason"),
    Family("ingest.refused.", "ingest_refused", ("reason",),
           "decoded messages refused (not this gateway's point, out of time...), by reason"),
    Family("ingest.outcome.", "ingest_outcomes", ("outcome",),
           "messages settled (acknowledged end to end), by outcome"),
    Family("dead_letters.reason.", "dead_letters", ("reason",),
           "messages kept as dead letters, by reason"),
    Family("notify.channel.", "pages", ("channel", "status"),
           "page deliveries attempted, by channel and outcome (sent, failed, retry...)"),
    Family("api.actions.", "incident_actions", ("action",),
           "incident actions taken through the API, by action"),
)

PLAIN: dict[str, tuple[str, str]] = {
    "ingest.readings": ("ingest_readings", "readings routed to the time-series store"),
    "ingest.redelivered": ("ingest_redelivered", "messages received again (already applied)"),
    "ingest.settled": ("ingest_settled", "messages acknowledged to their gateway"),
    "acks.published": ("settled_acks_published",
                       "end-to-end acknowledgements (Settled) published to gateways"),
    "acks.ranges_forgotten": ("settled_acks_ranges_forgotten",
                              "settled ranges dropped unannounced (the gateway re-sends them)"),
    "dead_letters.received": ("dead_letters_received",
                              "messages dead-lettered (acknowledged, kept, not applied)"),
    "influx.written_lines": ("influx_written_lines", "lines InfluxDB stored"),
    "influx.written_batches": ("influx_written_batches", "write requests InfluxDB stored"),
    "influx.rejected_lines": ("influx_rejected_lines", "lines InfluxDB refused for good"),
    "influx.connect_errors": ("influx_connect_errors", "InfluxDB requests that got no answer"),
    "influx.server_errors": ("influx_server_errors", "InfluxDB writes answered 5xx (retried)"),
    "influx.spooled_lines": ("influx_spooled_lines", "lines put in the disk spool"),
    "influx.spool_sent_lines": ("influx_spool_sent_lines", "spooled lines written later"),
    "influx.spool_dropped_lines": ("influx_spool_dropped_lines",
                                   "spooled lines dropped (the spool was full)"),
    "mqtt.connects": ("mqtt_connects", "MQTT sessions established"),
    "mqtt.disconnects": ("mqtt_disconnects", "MQTT sessions lost"),
    # ingest.source: nats
    "nats.connects": ("nats_connects", "NATS consumers reading (after a connect)"),
    "nats.disconnects": ("nats_disconnects", "NATS connections lost"),
    "nats.connect_failures": ("nats_connect_failures",
                              "NATS connects or stream set-ups that failed (retried)"),
    "nats.fetch_failures": ("nats_fetch_failures", "JetStream pulls that failed (retried)"),
    "nats.redeliveries": ("nats_redeliveries",
                          "JetStream messages delivered again (a process died holding them)"),
    "nats.retain_unsupported": ("nats_retain_unsupported",
                                "retained publications sent plain (NATS has no retain)"),
    "live.published_events": ("live_events", "events pushed to live connections"),
    "live.dropped_events": ("live_dropped_events", "live events dropped for slow clients"),
    "notify.errors": ("notify_errors", "notifier passes that failed"),
    "escalation.errors": ("escalation_errors", "escalation passes or steps that failed"),
}

GAUGES: dict[str, tuple[str, str]] = {
    "mqtt.connected": ("mqtt_connected", "1 when both MQTT sessions are connected"),
    "ingest.unacked": ("ingest_unacked_messages",
                       "messages taken from MQTT and not yet acknowledged"),
    "influx.buffered_lines": ("influx_buffered_lines", "lines waiting to be written"),
    "influx.spool_lines": ("influx_spool_lines", "lines in the disk spool (InfluxDB outage)"),
    "influx.spool_bytes": ("influx_spool_bytes", "bytes in the disk spool"),
    "live.subscribers": ("live_connections", "open live (WebSocket) connections"),
    "registry.points": ("registry_points", "points in the registry"),
}

HISTOGRAMS: dict[str, tuple[str, str]] = {
    "influx.write": ("influx_write_duration_seconds", "time of one InfluxDB write request"),
    "escalation.pass": ("escalation_pass_duration_seconds",
                        "time of one escalation scheduler pass"),
}


def full(name: str) -> str:
    return f"{PREFIX}_{name}"
