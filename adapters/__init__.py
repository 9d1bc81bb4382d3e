"""Adapters: the ports of `application` implemented on real (or in-memory) technology."""
