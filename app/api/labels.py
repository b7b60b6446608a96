"""Labeling through the API: next, labels, undo."""

from __future__ import annotations

from flask import current_app, g, jsonify

from app.api import bp
from app.api.common import json_body
from app import jobs
from app.api.links import api_links
from app.auth import ANY_ROLE, requires
from app.db import get_session
from app.api.shapes import annotation_json, label_json
from labeling import labels, projects, queue, tasks
from labeling.db import utcnow
from labeling.db import iso


@bp.get("/projects/<int:project_id>/next")
@requires(*ANY_ROLE, api=True, read_project=True)
def next_example(project_id: int):
    """Lease the next example to label; 204 when there is none for this user now."""
    db = get_session()
    project = projects.get_project(db, project_id)  # read with the caller (app.auth)
    lease = queue.lease_next(db, project, g.user, now=utcnow(), lease_seconds=current_app.config["LEASE_SECONDS"])
    db.commit()
    if lease is None:
        return "", 204
    out = {
        "example": {"id": lease.example_id, "external_id": lease.external_id, "data": lease.data},
        "lease": {"id": lease.lease_id, "expires_at": iso(lease.expires_at)},
        "why": {"strategy": lease.strategy, "score": lease.score, "model_version": lease.model_version},
    }
    if lease.suggestion is not None:  # the project's suggestions are on
        suggestion = lease.suggestion.as_json()
        if suggestion is not None and tasks.is_multi_label(project):
            suggestion = {"labels": annotation_json(suggestion.pop("label"), True), **suggestion}
        out["suggestion"] = suggestion
    return jsonify(out)


@bp.post("/projects/<int:project_id>/labels")
@requires(*ANY_ROLE, api=True, read_project=True)
def submit(project_id: int):
    """Label an example (idempotent on idempotency_key)."""
    body = json_body()
    db = get_session()
    project = projects.get_project(db, project_id)  # read with the caller (app.auth)
    result = labels.submit_label(
        db, project, g.user, body.get("example_id"), tasks.annotation_in(project, body), now=utcnow(),
        lease_id=body.get("lease_id"), idempotency_key=body.get("idempotency_key"),
        duration_ms=body.get("duration_ms"), mistake_confidence=current_app.config["MISTAKE_CONFIDENCE"],
        links=api_links(),
    )
    db.commit()
    jobs.queued(result.retrain_run_id)
    multi = tasks.is_multi_label(project)
    out = {"label": label_json(result.label, g.user.name, multi=multi)}
    if result.warning:
        out["warning"] = {**result.warning, "suggested": annotation_json(result.warning["suggested"], multi)}
    return jsonify(out), 201


@bp.post("/labels/<int:label_id>/undo")
@requires(*ANY_ROLE, api=True)
def undo(label_id: int):
    """Undo a label with a new event; the example goes back to the queue."""
    db = get_session()
    event = labels.undo_label(db, g.user, label_id, now=utcnow())
    db.commit()
    return jsonify({"undo": label_json(event, g.user.name), "undone_label_id": label_id})
