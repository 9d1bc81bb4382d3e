"""The WSGI application. gunicorn: `gunicorn 'entrypoints.wsgi:create_app()'`."""

from __future__ import annotations

import logging
from pathlib import Path

from flask import Flask

from adapters.http.answer_cache import install_answer_cache
from adapters.http.api import install_api
from adapters.http.auth_api import install_auth_api
from adapters.http.security import install_authentication, trust_reverse_proxies
from adapters.http.web_ui import install_web_ui
from entrypoints.container import Container
from entrypoints.settings import Settings

# `npm run build` in frontend/ writes here; the checkout is the installed package (pip -e).
WEB_UI_DIST = Path(__file__).resolve().parent.parent / "frontend" / "dist"


def create_container(settings: Settings | None = None) -> Container:
    container = Container()
    container.config.from_dict((settings or Settings.from_env()).as_config())
    return container


def create_app(container: Container | None = None) -> Flask:
    container = container or create_container()
    Settings(secret_key=container.config.secret_key()).require_secret_key()
    logging.basicConfig(
        level=container.config.log_level(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    app = Flask("devicelab")
    app.config["MAX_CONTENT_LENGTH"] = container.config.max_body_bytes()
    app.config["DEVICELAB_GRAFANA_URL_TEMPLATE"] = container.config.grafana_url_template()
    app.config["DEVICELAB_MAX_SAMPLES_PER_METRIC"] = container.config.max_samples_per_metric()
    app.json.sort_keys = False
    app.extensions["devicelab.container"] = container
    install_answer_cache(app, container.config.list_cache_entries())
    api = install_api(app)
    if container.config.auth_mode() == "local":  # else the auth service runs elsewhere
        install_auth_api(
            app, api, container.config.login_rate_limit(), *container.login_limit_storage()
        )
        install_authentication(
            app, container.auth_service_authenticator(), "/auth", api_tokens_only_where_marked=True
        )
    install_authentication(app, container.authenticator(), prefix="/api")
    trust_reverse_proxies(app, container.config.trusted_proxies())
    install_web_ui(app, WEB_UI_DIST)
    return app
