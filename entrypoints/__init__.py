"""Composition roots: configuration, the container, the WSGI app and the CLI."""
