"""Time series: readings, health and access lines written to InfluxDB, spooled while it is away."""
