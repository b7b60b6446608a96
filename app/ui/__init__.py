"""Browser pages (Flask + htmx). Views parse, call one labeling function, render."""

from flask import Blueprint

bp = Blueprint("ui", __name__)

from app.ui import account, audit, browse, dashboard, imports, label, projects, review, runs, settings, users  # noqa: E402,F401  (registers routes)
