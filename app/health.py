"""Operations endpoints."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor, TimeoutError as FutureTimeout

from flask import Blueprint, current_app, jsonify
from sqlalchemy import text

from app.auth import public
from labeling.db import read_in_own_transaction

bp = Blueprint("health", __name__)

# A health check answers within this, even when the database hangs: its query runs in a thread
# of its own and is given up on (the thread ends with the connect or statement timeout).
DATABASE_CHECK_SECONDS = 1.5
_checks = ThreadPoolExecutor(max_workers=2, thread_name_prefix="hitl-health")


def _ping(make_session) -> None:  # type: ignore[no-untyped-def]
    with make_session() as session:
        read_in_own_transaction(session)  # on SQLite: no write lock, so a long import does not block it
        session.execute(text("SELECT 1"))


@bp.route("/healthz")
@public
def healthz():
    """200 when the database answers and, when one is configured (RQ), a job worker listens."""
    body = {"database": "ok"}
    try:
        _checks.submit(_ping, current_app.extensions["hitl_sessionmaker"]).result(timeout=DATABASE_CHECK_SECONDS)
    except FutureTimeout:
        body["database"] = f"error: no answer within {DATABASE_CHECK_SECONDS} s"
    except Exception as exc:  # any failure of the database means unhealthy
        body["database"] = f"error: {type(exc).__name__}"
    body["worker"] = current_app.extensions["hitl_jobs"].health() or "ok"
    healthy = body["database"] == body["worker"] == "ok"
    body["status"] = "ok" if healthy else "unhealthy"
    return jsonify(body), 200 if healthy else 503
