"""/api/docs and /auth/docs: Swagger UI served from the package, nothing from elsewhere, under a
strict Content-Security-Policy (the page where people paste their tokens)."""

from __future__ import annotations

import os
import re
import subprocess
import threading
from html.parser import HTMLParser
from pathlib import Path

import pytest
from flask import Flask
from werkzeug.serving import make_server

from adapters.http.api import install_api
from adapters.http.auth_api import install_auth_service

CONTENT_TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}


class _References(HTMLParser):
    """Every URL the page makes the browser load, and the bodies of its script elements."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.scripts: list[dict] = []
        self.spec_urls: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for name in ("src", "href"):
            if attrs.get(name):
                self.urls.append(attrs[name])
        if attrs.get("data-spec-url"):
            self.spec_urls.append(attrs["data-spec-url"])
        if tag == "script":
            self.scripts.append({"src": attrs.get("src"), "body": ""})
            self._in_script = True

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.scripts[-1]["body"] += data


def _api_client():
    app = Flask("devicelab-docs-test")
    install_api(app)
    return app.test_client()


def _auth_client():
    app = Flask("devicelab-auth-docs-test")
    install_auth_service(app, "10/minute")
    return app.test_client()


@pytest.fixture(params=["api", "auth"])
def docs(request):
    client = _api_client() if request.param == "api" else _auth_client()
    return client, f"/{request.param}"


def _page(client, prefix):
    response = client.get(f"{prefix}/docs")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    refs = _References()
    refs.feed(response.get_data(as_text=True))
    return response, refs


def test_the_page_references_nothing_outside_the_app(docs):
    client, prefix = docs
    response, refs = _page(client, prefix)
    text = response.get_data(as_text=True)
    assert not re.search(r"https?:|//[a-z0-9]", text, re.IGNORECASE)
    assert refs.urls and all(url.startswith(f"{prefix}/docs/") for url in refs.urls)
    assert refs.scripts and all(s["src"] and not s["body"].strip() for s in refs.scripts)


def test_every_asset_loads_with_its_content_type(docs):
    client, prefix = docs
    _, refs = _page(client, prefix)
    for url in refs.urls:
        response = client.get(url)
        assert response.status_code == 200, url
        suffix = url[url.rindex(".") :]
        assert response.mimetype == CONTENT_TYPES[suffix], url
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    bundle = client.get(f"{prefix}/docs/assets/swagger-ui-bundle.js").get_data(as_text=True)
    assert "SwaggerUIBundle" in bundle


def test_the_page_points_swagger_ui_at_the_apps_own_openapi_document(docs):
    client, prefix = docs
    _, refs = _page(client, prefix)
    assert refs.spec_urls == [f"{prefix}/openapi.json"]
    assert client.get(refs.spec_urls[0]).get_json()["openapi"].startswith("3.")
    start = client.get(f"{prefix}/docs/start.js").get_data(as_text=True)
    assert "dataset.specUrl" in start
    assert "validatorUrl: null" in start  # no badge fetched from an outside service


def test_the_page_has_a_strict_content_security_policy_and_cannot_be_framed(docs):
    client, prefix = docs
    response, _ = _page(client, prefix)
    directives = (p.strip() for p in response.headers["Content-Security-Policy"].split(";"))
    policy = dict(part.partition(" ")[::2] for part in directives)
    assert policy["default-src"] == "'none'"
    assert policy["script-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    everything = " ".join(policy.values())
    assert "unsafe-inline" not in everything and "unsafe-eval" not in everything
    assert not re.search(r"https?:|\*", everything)
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "no-referrer"


@pytest.mark.parametrize(
    "name", ["index.html", "swagger-ui.js.map", "..%2F..%2F__init__.py", "VERSION", "LICENSE"]
)
def test_only_the_pages_own_assets_are_served(docs, name):
    client, prefix = docs
    assert client.get(f"{prefix}/docs/assets/{name}").status_code == 404


CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture
def served_docs():
    """The API (docs and OpenAPI document) on a real HTTP server on a free port."""
    app = Flask("devicelab-docs-browser-test")
    install_api(app)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join()


def test_swagger_ui_renders_in_a_browser_without_breaking_its_policy(served_docs, tmp_path):
    """Debian's Chromium loads the page, Swagger UI draws the operations, and the browser
    reports no Content-Security-Policy violation (it would, on stderr, for a blocked load)."""
    if not CHROMIUM.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and no {CHROMIUM}", pytrace=False)
        pytest.skip(f"no {CHROMIUM} (make e2e installs it)")
    result = subprocess.run(
        [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=20000",
            "--dump-dom",
            f"{served_docs}/api/docs",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    dom = result.stdout
    assert 'data-path="/api/devices"' in dom, result.stderr[-2000:]
    assert 'data-path="/api/test-runs"' in dom
    violations = [
        line
        for line in result.stderr.splitlines()
        if "Content Security Policy" in line or "Refused to" in line
    ]
    assert violations == []
