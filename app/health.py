"""Operations endpoints."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from sqlalchemy import text

from app.auth import public
from app.db import get_session

bp = Blueprint("health", __name__)


@bp.route("/healthz")
@public
def healthz():
    """200 when the database answers and, when one is configured (RQ), a job worker listens."""
    body = {"database": "ok"}
    try:
        get_session().execute(text("SELECT 1"))
    except Exception as exc:  # any failure of the database means unhealthy
        body["database"] = f"error: {type(exc).__name__}"
    body["worker"] = current_app.extensions["hitl_jobs"].health() or "ok"
    healthy = body["database"] == body["worker"] == "ok"
    body["status"] = "ok" if healthy else "unhealthy"
    return jsonify(body), 200 if healthy else 503
