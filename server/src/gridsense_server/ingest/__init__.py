"""MQTT ingest: paho network thread → bounded hand-off → asyncio dispatcher."""

from .dispatcher import Dispatcher
from .handoff import Handoff
from .mqtt_consumer import MqttConsumer

__all__ = ["Dispatcher", "Handoff", "MqttConsumer"]
