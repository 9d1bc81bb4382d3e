"""HTTP adapter: the REST API under /api, built with flask-smorest."""
