"""The way out and back in: durable outbox, envelope publisher, MQTT uplink and downlink."""
