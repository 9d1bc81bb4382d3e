"""Serve the built web UI (frontend/dist) at `/`, as a single-page app.

- Files that exist in the build are served as they are. Vite puts content-hashed files under
  `assets/`; they never change, so browsers may keep them for a year. Everything else
  (index.html above all) is revalidated on every load, so a new build shows up at once.
- Any other path outside `/api` and `/auth` answers index.html: the UI's router owns those
  URLs, so a bookmarked or reloaded `/runs/…` works.
- `/api/…` and `/auth/…` paths that no view handles keep their JSON 404, and a missing
  hashed asset is a real 404 too (an HTML page in place of a script only confuses).
- Without a build, `/` explains how to make one instead of failing."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Flask, Response, abort, send_from_directory

IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
RESERVED_PREFIXES = ("api", "auth")

# The UI talks only to its own origin; styles may be set inline by components and charts.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self' data:",
        "object-src 'none'",
        "base-uri 'self'",
        "frame-ancestors 'none'",
        "form-action 'self'",
    ]
)

NOT_BUILT_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>devicelab: web UI not built</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 4rem auto; line-height: 1.5">
<h1>The devicelab web UI has not been built</h1>
<p>The API is running (see <a href="/api/docs">/api/docs</a>), but there is no web UI build
in <code>{dist}</code>.</p>
<p>Build it with <code>make up</code> (which builds it when needed), or by hand:
<code>cd frontend &amp;&amp; npm ci &amp;&amp; npm run build</code> (Node 20 or newer).
Then reload this page.</p>
</body></html>
"""


def web_ui_blueprint(dist_dir: Path) -> Blueprint:
    dist = Path(dist_dir).resolve()
    blp = Blueprint("web_ui", __name__)

    def index() -> Response:
        if not (dist / "index.html").is_file():
            page = NOT_BUILT_PAGE.format(dist=dist)
            return Response(page, status=503, mimetype="text/html", headers={"Retry-After": "30"})
        response = send_from_directory(dist, "index.html", max_age=0)
        response.headers["Cache-Control"] = REVALIDATE
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        return response

    @blp.get("/", defaults={"path": ""})
    @blp.get("/<path:path>")
    def serve(path: str) -> Response:
        first = path.split("/", 1)[0]
        if first in RESERVED_PREFIXES:
            abort(404)
        if path and path != "index.html" and (dist / path).is_file():
            # send_from_directory refuses paths that leave `dist`.
            response = send_from_directory(dist, path, max_age=0)
            hashed = first == "assets"
            response.headers["Cache-Control"] = IMMUTABLE if hashed else REVALIDATE
            response.headers["X-Content-Type-Options"] = "nosniff"
            return response
        if first == "assets":
            abort(404)
        return index()

    return blp


def install_web_ui(app: Flask, dist_dir: Path) -> None:
    """Register the UI last: API and auth routes are more specific and keep precedence."""
    app.register_blueprint(web_ui_blueprint(dist_dir))
