"""Telemetry from the lab's devices: an MQTT listener and the JSON payload it understands."""
