"""The web edge: ``create_app()`` builds a configured Flask app; no global app exists."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from flask import Flask
from flask_htmx import HTMX
from flask_wtf.csrf import CSRFProtect
from werkzeug.routing import IntegerConverter

from labeling import outbound

ROOT = Path(__file__).resolve().parent.parent


class BoundedInt(IntegerConverter):
    def __init__(self, map, *args, **kwargs):  # noqa: A002 (werkzeug's name)
        kwargs.setdefault("max", 2**63 - 1)
        super().__init__(map, *args, **kwargs)
csrf = CSRFProtect()
htmx = HTMX()


def create_app(overrides: dict[str, Any] | None = None, *, instance_path: str | None = None) -> Flask:
    """Build the app; ``overrides`` win over every other source of settings (tests use this)."""
    from app import api, auth, health, ui
    from app.config import load_config
    from app.db import init_db
    from app.errors import register_error_handlers
    from app.jobs import init_jobs
    from app.limits import init_limits
    from app.metrics import init_metrics

    app = Flask(
        __name__,
        instance_path=instance_path or os.environ.get("LABELING_INSTANCE_PATH") or str(ROOT / "instance"),
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    # Ids in URLs fit the database's 64-bit integers: a larger one is a 404, not an overflow.
    app.url_map.converters["int"] = BoundedInt
    load_config(app, overrides)
    init_limits(app)
    if app.config["TRUSTED_PROXIES"]:  # the client address from X-Forwarded-For, that many hops back
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=app.config["TRUSTED_PROXIES"])  # type: ignore[method-assign]
    outbound.private_addresses_allowed = app.config["WEBHOOK_ALLOW_PRIVATE"]
    logging.basicConfig(level=app.config["LOG_LEVEL"], format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)  # a line per plugin, every start
    init_db(app)
    init_jobs(app)
    csrf.init_app(app)
    htmx.init_app(app)
    auth.login_manager.init_app(app)
    app.register_blueprint(auth.bp)
    app.register_blueprint(ui.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(health.bp)
    init_metrics(app)
    csrf.exempt(api.bp)  # bearer tokens, never cookies: no cross-site request can carry them
    register_error_handlers(app)

    @app.after_request
    def _security_headers(response):  # type: ignore[no-untyped-def]
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data: http: https:; style-src 'self' 'unsafe-inline'; "
            "script-src 'self'; frame-ancestors 'none'",
        )
        return response

    from app.cli import register_flask_cli

    register_flask_cli(app)
    return app
