"""The audit trail in the API (admin)."""

from __future__ import annotations

from flask import jsonify, request

from app.api import bp
from app.api.common import pagination
from app.api.shapes import audit_json
from app.auth import ADMINS, requires
from app.db import get_session
from labeling import audit
from labeling.db import reading
from labeling.errors import InvalidInput


def audit_filters() -> dict[str, object]:
    """``actor``, ``action`` and ``project`` from the query string, checked (the page uses it too)."""
    project = request.args.get("project") or None
    if project is not None and not (project.isdigit() and int(project) < 2**63):
        raise InvalidInput.one("must be a project id", field="project")
    action = request.args.get("action") or None
    if action is not None:
        audit.check_action_filter(action)
    return {"actor": request.args.get("actor") or None, "action": action,
            "project_id": int(project) if project is not None else None}


@bp.get("/audit")
@requires(*ADMINS, api=True)
def list_audit_events():
    """Audit events, newest first (?actor=NAME&action=NAME&project=ID)."""
    limit, offset = pagination()
    filters = audit_filters()
    with reading(get_session()) as db:
        events = audit.list_events(db, **filters, limit=limit, offset=offset)
        return jsonify({"events": [audit_json(e) for e in events], "limit": limit, "offset": offset})
