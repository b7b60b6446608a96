"""Operations endpoints."""

from __future__ import annotations

from flask import Blueprint, jsonify
from sqlalchemy import text

from app.auth import public
from app.db import get_session

bp = Blueprint("health", __name__)


@bp.route("/healthz")
@public
def healthz():
    """Answer 200 when the database answers."""
    try:
        get_session().execute(text("SELECT 1"))
    except Exception as exc:  # any failure of the database means unhealthy
        return jsonify({"status": "unhealthy", "database": f"error: {type(exc).__name__}"}), 503
    return jsonify({"status": "ok", "database": "ok"})
