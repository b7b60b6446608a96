"""The JSON API under /api/v1 (see docs/api.md and /api/v1/openapi.json)."""

from flask import Blueprint

bp = Blueprint("api", __name__, url_prefix="/api/v1")

from app.api import audit, browse, examples, flags, labels, openapi, projects, runs, tokens, users  # noqa: E402,F401  (registers routes)
