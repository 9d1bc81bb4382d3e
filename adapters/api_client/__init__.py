"""A client of devicelab's public REST API (what the `devicelab run` / `devices` commands use):
plain HTTP with a bearer token, no database access."""
