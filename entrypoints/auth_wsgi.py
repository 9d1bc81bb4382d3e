"""The auth service on its own: `gunicorn 'entrypoints.auth_wsgi:create_auth_app()'`.

Serves only /auth (login, logout, sessions, passwords, users) on the auth store. Backends
elsewhere verify tokens against it with DEVICELAB_AUTH_MODE=remote and DEVICELAB_AUTH_URL.
`entrypoints.wsgi:create_app()` serves /auth beside /api too, in the default local mode."""

from __future__ import annotations

import logging

from flask import Flask

from adapters.http.auth_api import install_auth_service
from adapters.http.security import install_authentication, trust_reverse_proxies
from entrypoints.container import Container
from entrypoints.settings import Settings
from entrypoints.wsgi import create_container


def create_auth_app(container: Container | None = None) -> Flask:
    container = container or create_container()
    Settings(secret_key=container.config.secret_key()).require_secret_key()
    logging.basicConfig(
        level=container.config.log_level(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    app = Flask("devicelab-auth")
    app.config["MAX_CONTENT_LENGTH"] = container.config.max_body_bytes()
    app.json.sort_keys = False
    app.extensions["devicelab.container"] = container
    install_auth_service(app, container.config.login_rate_limit(), *container.login_limit_storage())
    install_authentication(
        app, container.auth_service_authenticator(), "/auth", api_tokens_only_where_marked=True
    )
    trust_reverse_proxies(app, container.config.trusted_proxies())
    return app
