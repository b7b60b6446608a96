"""The audit page (admin): who changed what, newest first, with filters and pages."""

from __future__ import annotations

from flask import render_template, request

from app.api.audit import audit_filters
from app.api.shapes import audit_json
from app.auth import ADMINS, requires
from app.db import get_session
from app.ui import bp, page_number
from labeling import audit
from labeling.db import reading

PAGE_SIZE = 50


@bp.get("/audit")
@requires(*ADMINS)
def audit_page():
    """List audit events, filtered by actor, action and project."""
    filters = audit_filters()
    page = page_number()
    with reading(get_session()) as db:
        events = audit.list_events(db, **filters, limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE)
        rows = [audit_json(e) for e in events[:PAGE_SIZE]]
        projects = audit.project_names(db, {e["project"] for e in rows if e.get("project") is not None})
    args = {k: v for k, v in request.args.items() if k in ("actor", "action", "project") and v}
    return render_template("pages/audit.html", events=rows, page=page, has_more=len(events) > PAGE_SIZE, args=args,
                           projects=projects, actions=list(audit.ACTIONS), families=audit.families())
