"""The web UI is served at / as a single-page app, beside the JSON API."""

from __future__ import annotations

import pytest
from flask import Flask

from adapters.http.api import install_api
from adapters.http.web_ui import IMMUTABLE, install_web_ui

INDEX = "<!doctype html><title>devicelab</title><div id=app></div>"


def _client(dist):
    app = Flask("devicelab-ui-test")
    install_api(app)
    install_web_ui(app, dist)
    app.testing = True
    return app.test_client()


@pytest.fixture
def dist(tmp_path):
    root = tmp_path / "dist"
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_text(INDEX)
    (root / "assets" / "index-AbC123.js").write_text("console.log('ui')")
    (root / "favicon.svg").write_text("<svg/>")
    return root


def test_root_serves_index_revalidated_with_a_content_security_policy(dist):
    response = _client(dist).get("/")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert "devicelab" in response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "no-cache"
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]


@pytest.mark.parametrize("path", ["/runs/123", "/devices", "/test-cases/new", "/users"])
def test_unknown_ui_paths_fall_back_to_index(dist, path):
    response = _client(dist).get(path)
    assert response.status_code == 200
    assert response.get_data(as_text=True) == INDEX
    assert response.headers["Cache-Control"] == "no-cache"


def test_hashed_assets_are_cached_for_a_year(dist):
    response = _client(dist).get("/assets/index-AbC123.js")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == IMMUTABLE
    assert "console.log" in response.get_data(as_text=True)


def test_other_files_are_revalidated(dist):
    response = _client(dist).get("/favicon.svg")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-cache"


def test_a_missing_asset_is_a_404_not_the_index(dist):
    response = _client(dist).get("/assets/index-gone.js")
    assert response.status_code == 404


@pytest.mark.parametrize("path", ["/api/nope", "/api/devices/x/nope", "/auth/nope"])
def test_unknown_api_and_auth_paths_keep_the_json_404(dist, path):
    response = _client(dist).get(path)
    assert response.status_code == 404
    assert response.is_json
    assert response.get_json()["code"] == "not_found"


def test_api_routes_still_win(dist):
    response = _client(dist).get("/api/openapi.json")
    assert response.status_code == 200
    assert response.is_json


def test_paths_outside_the_build_are_not_served(dist, tmp_path):
    (tmp_path / "secret.txt").write_text("secret")
    response = _client(dist).get("/../secret.txt")
    assert "secret" not in response.get_data(as_text=True)
    response = _client(dist).get("/%2e%2e/secret.txt")
    assert "secret" not in response.get_data(as_text=True)


def test_without_a_build_root_explains_how_to_build(tmp_path):
    response = _client(tmp_path / "missing").get("/")
    assert response.status_code == 503
    body = response.get_data(as_text=True)
    assert "npm run build" in body
    assert "make up" in body
    assert _client(tmp_path / "missing").get("/api/openapi.json").status_code == 200
