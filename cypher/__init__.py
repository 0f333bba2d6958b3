"""Cypher: zero-knowledge login with OPAQUE, TOTP and PASETO sessions, as one Flask application."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask
from flask_cors import CORS
from werkzeug.middleware.proxy_fix import ProxyFix

from cypher.config import ConfigError, load_config, production_problems, trusted_hosts
from cypher.cookies import SessionCookies
from cypher.forward_auth import ForwardAuth
from cypher.http import WsgiApp, install_http_conventions
from cypher.keys import load_or_create_keyring, permissions_too_open
from cypher.observability import RequestObserver, install_observability
from cypher.ratelimit import install_rate_limits
from cypher.request_auth import COOKIES_EXTENSION
from cypher.security_headers import SecurityHeaders
from cypher.services.clock import system_clock
from cypher.static_types import register_static_types
from cypher.store import Store
from cypher.store.migrate import upgrade
from cypher.wiring import EXTENSION_NAME, build_services


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the application. `config` overrides the CYPHER_* environment (tests use it)."""
    app = Flask(__name__, instance_path=os.environ.get("CYPHER_INSTANCE_PATH") or None)
    app.config.update(load_config(Path(app.instance_path)))
    if config:
        app.config.update(config)
    install_http_conventions(app)
    # The instance folder holds the keys and the SQLite database: owner only.
    Path(app.instance_path).mkdir(mode=0o700, parents=True, exist_ok=True)

    keys_path = Path(app.config["KEYS_FILE"])
    keyring = load_or_create_keyring(keys_path)
    if app.config["CYPHER_ENV"] == "production":
        problems = production_problems(app.config, permissions_too_open(keys_path))
        if problems:
            raise ConfigError("Cypher will not start in production: " + "; ".join(problems) + ".")
    # Flask's own Host check, on every request it routes; the gateway below makes the same one.
    app.config["TRUSTED_HOSTS"] = trusted_hosts(app.config)
    # Named once, here: every view, the gateway and the tests read them from this one place.
    cookies = SessionCookies.for_settings(app.config["COOKIE_SECURE"], app.config["COOKIE_DOMAIN"])
    app.extensions[COOKIES_EXTENSION] = cookies
    store = Store(app.config["DATABASE_URL"])
    if app.config["MIGRATE_ON_START"]:
        upgrade(store.engine)
    clock = app.config.get("CLOCK", system_clock)
    services = build_services(app.config, keyring, store, clock)
    app.extensions[EXTENSION_NAME] = services

    register_static_types()
    from cypher.blueprints import account, activity, gateway, opaque, pages, sessions, totp

    for blueprint in (opaque.bp, totp.bp, sessions.bp, account.bp, activity.bp, gateway.bp, pages.bp):
        app.register_blueprint(blueprint)
    metrics = install_observability(app)
    install_rate_limits(
        app, [opaque.bp, totp.bp, sessions.bp, account.bp, activity.bp], metrics.ratelimit_fallbacks.inc
    )
    if app.config["ALLOWED_ORIGINS"]:
        # Only the listed origins, with credentials; nothing at all when the list is empty, nor to
        # a request without an Origin (always_send would list the allowed origins to anyone).
        CORS(app, origins=app.config["ALLOWED_ORIGINS"], supports_credentials=True, always_send=False)

    # The WSGI layers, outermost first: request ids, metrics and logs; security headers; the
    # client address and host behind proxies (the gateway checks the host as the proxy saw it);
    # the nginx gateway's /auth/verify, answered before Flask.
    wsgi_app: WsgiApp = ForwardAuth(
        app.wsgi_app, services.sessions, app.json, cookies.access.name, app.config["TRUSTED_HOSTS"]
    )
    proxies = app.config["TRUSTED_PROXIES"]
    if proxies:
        wsgi_app = ProxyFix(wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies)
    wsgi_app = SecurityHeaders(wsgi_app, production=app.config["CYPHER_ENV"] == "production")
    app.wsgi_app = RequestObserver(wsgi_app, metrics)  # type: ignore[method-assign]

    from cypher.cli import register_commands

    register_commands(app)
    return app
