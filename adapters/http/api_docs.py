"""The interactive API documentation (Swagger UI) at `<prefix>/docs`, served by the app itself.

People paste their tokens into this page, and labs are often offline, so nothing comes from a
CDN: Swagger UI's files are those of the pinned `flask-swagger-ui` wheel (only its `dist/`
files are used, not its blueprint, whose page needs inline script). The page, its small
start script and the assets are served under `<prefix>/docs/`, and the page runs under a
Content-Security-Policy that allows this origin only, no inline script, no framing."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from flask import Blueprint, Flask, Response, abort, send_from_directory
from markupsafe import escape

SWAGGER_UI_DIST = Path(str(files("flask_swagger_ui"))) / "dist"
# what the page loads; nothing else from the wheel is reachable
SWAGGER_UI_ASSETS = frozenset(
    {"swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png", "favicon-16x16.png"}
)

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}: API documentation</title>
<link rel="stylesheet" href="{base}/assets/swagger-ui.css">
<link rel="icon" type="image/png" sizes="32x32" href="{base}/assets/favicon-32x32.png">
<link rel="icon" type="image/png" sizes="16x16" href="{base}/assets/favicon-16x16.png">
</head>
<body>
<div id="swagger-ui" data-spec-url="{spec_url}"></div>
<script src="{base}/assets/swagger-ui-bundle.js"></script>
<script src="{base}/start.js"></script>
</body>
</html>
"""

# The spec's URL comes from the page (a data attribute), so this script is the same for every
# prefix. No validator badge: it would call an outside service with the spec's address.
START_SCRIPT = """window.addEventListener("load", function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.specUrl,
    domNode: root,
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout"
  });
});
"""


def _page_headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def api_docs_blueprint(prefix: str, spec_path: str, title: str) -> Blueprint:
    """Swagger UI at `{prefix}/docs` for the OpenAPI document at `spec_path`."""
    base = f"{prefix}/docs"
    blp = Blueprint(f"docs{prefix.replace('/', '_')}", __name__, url_prefix=base)
    page = PAGE.format(title=escape(title), base=base, spec_url=escape(spec_path))

    @blp.get("", strict_slashes=False)
    def docs_page() -> Response:
        return _page_headers(Response(page, mimetype="text/html"))

    @blp.get("/start.js")
    def start_script() -> Response:
        return _page_headers(Response(START_SCRIPT, mimetype="text/javascript"))

    @blp.get("/assets/<name>")
    def asset(name: str) -> Response:
        if name not in SWAGGER_UI_ASSETS:
            abort(404)
        return _page_headers(send_from_directory(SWAGGER_UI_DIST, name))

    return blp


def install_api_docs(app: Flask, prefix: str, spec_path: str, title: str) -> None:
    app.register_blueprint(api_docs_blueprint(prefix, spec_path, title))
