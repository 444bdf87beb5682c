"""gridsense server: MQTT ingest, InfluxDB writer, registry, incidents, HTTP API."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("gridsense-server")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0"
