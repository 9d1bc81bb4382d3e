"""Assemble the REST API on a Flask app: blueprints, error shape, OpenAPI settings."""

from __future__ import annotations

from flask import Flask

from adapters.http import (
    artifacts,
    comparison,
    devices,
    environments,
    events,
    health,
    health_checks,
    holds,
    plans,
    queue,
    run_exports,
    run_log_stream,
    run_logs,
    runner_callbacks,
    runner_uploads,
    runners,
    statistics,
    test_cases,
    test_runs,
    trends,
    utilisation,
    webhooks,
)
from adapters.http.api_docs import install_api_docs
from adapters.http.errors import DevicelabApi, register_domain_error_handler
from adapters.http.json_limits import refuse_unreadable_json
from adapters.http.list_etags import remember_answer_shape
from adapters.http.nul_characters import refuse_nul_characters
from adapters.http.response_headers import protect_api_answers
from adapters.http.security import document_bearer_scheme

BLUEPRINTS = [
    health.blp,
    devices.blp,
    test_cases.blp,
    environments.blp,
    test_runs.blp,
    run_exports.blp,
    queue.blp,
    holds.blp,
    runner_callbacks.blp,
    events.blp,
    statistics.blp,
    comparison.blp,
    trends.blp,
    utilisation.blp,
    webhooks.blp,
    plans.blp,
    plans.runs_blp,
    health_checks.blp,
    runners.blp,
    run_logs.blp,
    run_log_stream.blp,
    artifacts.blp,
    runner_uploads.blp,
]

OPENAPI_SETTINGS = {
    "API_TITLE": "devicelab",
    "API_VERSION": "1",
    "OPENAPI_VERSION": "3.0.3",
    "OPENAPI_URL_PREFIX": "/api",
    "OPENAPI_JSON_PATH": "openapi.json",
    # no OPENAPI_SWAGGER_UI_*: flask-smorest's page loads Swagger UI from a CDN; ours
    # (install_docs_page) serves it from the package, under a strict CSP
}


def install_docs_page(app: Flask) -> None:
    """Swagger UI at `<OPENAPI_URL_PREFIX>/docs` for the app's OpenAPI document."""
    prefix = app.config["OPENAPI_URL_PREFIX"].rstrip("/")
    spec_path = f"{prefix}/{app.config['OPENAPI_JSON_PATH']}"
    install_api_docs(app, prefix, spec_path, app.config["API_TITLE"])


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
    install_docs_page(app)
    api.spec.components.security_scheme(
        "runCredential",
        {
            "type": "http",
            "scheme": "bearer",
            "description": "the per-run credential from the job message's `callback.token`",
        },
    )
    remember_answer_shape(app, api.spec.to_dict())
    return api
