"""The audit page (admin): who changed what, newest first, with filters and pages."""

from __future__ import annotations

from typing import Any

from flask import render_template, request

from app.api.audit import audit_filters
from app.api.shapes import audit_json
from app.auth import ADMINS, requires
from app.db import get_session
from app.ui import bp, page_number
from labeling import audit
from labeling.db import reading
from labeling.errors import InvalidInput

PAGE_SIZE = 50


@bp.get("/audit")
@requires(*ADMINS)
def audit_page():
    """List audit events, filtered by actor, action and project; a bad filter is said beside the form."""
    args = {k: v for k, v in request.args.items() if k in ("actor", "action", "project") and v}
    try:
        filters = audit_filters()
    except InvalidInput as exc:
        return render_template("pages/audit.html", events=[], page=1, has_more=False, args=args, projects={},
                               actions=list(audit.ACTIONS), families=audit.families(),
                               errors=[f"{p.field}: {p.message}" if p.field else p.message for p in exc.problems]), 422
    page = page_number()
    with reading(get_session()) as db:
        events = audit.list_events(db, **filters, limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE)
        rows = [audit_json(e) for e in events[:PAGE_SIZE]]
        projects = audit.project_names(db, {e["project"] for e in rows if e.get("project") is not None})
    return render_template("pages/audit.html", events=rows, page=page, has_more=len(events) > PAGE_SIZE, args=args,
                           projects=projects, actions=list(audit.ACTIONS), families=audit.families())


@bp.app_template_filter("audit_value")
def audit_value(value: Any) -> str:
    """A detail of an audit event in words, not Python's repr: lists joined, mappings as ``key: value``."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {audit_value(v)}" for k, v in value.items()) or "—"
    if isinstance(value, (list, tuple)):
        joiner = "; " if any(isinstance(v, dict) for v in value) else ", "
        return joiner.join(audit_value(v) for v in value) or "none"
    return str(value)
