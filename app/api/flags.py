"""Label-quality flags in the API."""

from __future__ import annotations

from flask import g, jsonify, request

from app.api import bp
from app.api.common import json_body, pagination
from app.auth import REVIEWERS, requires
from app.db import get_session
from app.api.shapes import flag_json
from labeling import projects, quality, reopening, tasks
from labeling.db import utcnow
from labeling.errors import InvalidInput, Problem
from labeling.models import FLAG_STATUSES, Example


@bp.get("/projects/<int:project_id>/flags")
@requires(*REVIEWERS, api=True)
def list_flags(project_id: int):
    """List flags, most suspicious first (?status=open by default; ?status=all for every one;
    ?reason=, ?min_score=, ?max_score= filter)."""
    limit, offset = pagination()
    status = request.args.get("status", "open")
    problems = [] if status in (*FLAG_STATUSES, "all") else [
        Problem(f"must be one of {', '.join(FLAG_STATUSES)} or all", field="status")]
    try:
        filters = quality.parse_flag_filters(request.args)
    except InvalidInput as exc:
        problems += exc.problems
    if problems:
        raise InvalidInput("invalid filters", problems)
    db = get_session()
    multi = tasks.is_multi_label(projects.get_project(db, project_id))
    rows = quality.list_flags(db, project_id, status=None if status == "all" else status, limit=limit, offset=offset,
                              filters=filters)
    return jsonify({"flags": [flag_json(f, ext, multi=multi) for f, ext in rows], "limit": limit, "offset": offset})


@bp.post("/flags/<int:flag_id>")
@requires(*REVIEWERS, api=True)
def resolve(flag_id: int):
    """Confirm (the suggestion is right), correct (with "label") or dismiss a flag; reopen takes a
    decision back."""
    body = json_body()
    db = get_session()
    if body.get("action") == "reopen":
        flag = reopening.reopen_flag(db, flag_id, g.user, now=utcnow())
    else:
        # "labels" for a multi-label project (checked against the project's task there).
        label = body["labels"] if "labels" in body else body.get("label")
        flag = quality.resolve_flag(db, flag_id, g.user, body.get("action"), label, now=utcnow())
    db.commit()
    multi = tasks.is_multi_label(projects.get_project(db, flag.project_id))
    return jsonify({"flag": flag_json(flag, db.get(Example, flag.example_id).external_id, multi=multi)})
