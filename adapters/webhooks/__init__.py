"""Sending webhook deliveries: name resolution and HTTP, pinned to the checked address."""
