"""MQTT ingest: bridge (paho's thread) → bounded hand-off → router → effects made durable by
the writer and the workers → settler (sequence record) → acknowledgement. Import the modules."""
