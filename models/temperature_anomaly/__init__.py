"""Temperature anomaly model: thermal simulator, evaluation harness, training and export."""
