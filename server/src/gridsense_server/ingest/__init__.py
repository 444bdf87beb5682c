"""MQTT ingest: paho network thread → bounded hand-off → asyncio dispatcher → durable effects
→ sequence record → acknowledgement. Import the modules themselves (acks, dispatcher, ...)."""
