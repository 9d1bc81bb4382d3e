"""Headers on every answer of the API (/api and /auth, errors included).

- `X-Content-Type-Options: nosniff`: a browser takes a JSON answer for JSON, never for a
  script or a page, whatever text a user managed to put into it.
- `Cache-Control: no-store`: answers carry lab data and tokens for one signed-in caller; no
  browser or proxy cache may keep them. A view that says otherwise (the event stream's
  `no-cache`) keeps its own. The web UI's files are outside these prefixes and keep their
  caching (see web_ui.py)."""

from __future__ import annotations

from flask import Flask, Response, request

API_PREFIXES = ("/api/", "/auth/")


def protect_api_answers(app: Flask) -> None:
    @app.after_request
    def _api_headers(response: Response) -> Response:
        path = request.path
        if path.startswith(API_PREFIXES) or path in ("/api", "/auth"):
            response.headers["X-Content-Type-Options"] = "nosniff"
            response.headers.setdefault("Cache-Control", "no-store")
        return response
