"""The reference Test Runner's adapters: executors, the callback API client, InfluxDB."""
