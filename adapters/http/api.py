"""Assemble the REST API on a Flask app: blueprints, error shape, OpenAPI settings."""

from __future__ import annotations

from flask import Flask

from adapters.http import (
    devices,
    environments,
    events,
    health,
    runner_callbacks,
    statistics,
    test_cases,
    test_runs,
)
from adapters.http.errors import DevicelabApi, register_domain_error_handler
from adapters.http.json_limits import refuse_unreadable_json
from adapters.http.nul_characters import refuse_nul_characters
from adapters.http.response_headers import protect_api_answers
from adapters.http.security import document_bearer_scheme

BLUEPRINTS = [
    health.blp,
    devices.blp,
    test_cases.blp,
    environments.blp,
    test_runs.blp,
    runner_callbacks.blp,
    events.blp,
    statistics.blp,
]

OPENAPI_SETTINGS = {
    "API_TITLE": "devicelab",
    "API_VERSION": "1",
    "OPENAPI_VERSION": "3.0.3",
    "OPENAPI_URL_PREFIX": "/api",
    "OPENAPI_JSON_PATH": "openapi.json",
    "OPENAPI_SWAGGER_UI_PATH": "/docs",
    # Swagger UI is loaded from a CDN by the browser; the server itself needs no network.
    "OPENAPI_SWAGGER_UI_URL": "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/",
}


def install_api(app: Flask) -> DevicelabApi:
    for key, value in OPENAPI_SETTINGS.items():
        app.config.setdefault(key, value)
    api = DevicelabApi(app)
    for blueprint in BLUEPRINTS:
        api.register_blueprint(blueprint)
    register_domain_error_handler(app)
    refuse_unreadable_json(app)  # before anything parses the body
    refuse_nul_characters(app)
    protect_api_answers(app)
    document_bearer_scheme(api)
    api.spec.components.security_scheme(
        "runCredential",
        {
            "type": "http",
            "scheme": "bearer",
            "description": "the per-run credential from the job message's `callback.token`",
        },
    )
    return api
