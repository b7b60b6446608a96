"""Retraining, runs and model versions in the API."""

from __future__ import annotations

from flask import g, jsonify, request

from app.api import bp
from app.api.common import json_body, pagination
from app import jobs
from app.auth import ADMINS, REVIEWERS, requires
from app.db import get_session
from app.api.shapes import delivery_json, model_json, run_json
from labeling import audit, projects, runs, webhooks
from labeling.predict import UNCERTAIN_BELOW
from labeling.predict import predict as champion_predictions
from labeling.errors import InvalidInput
from labeling.db import utcnow
from labeling.registry import list_models, snapshot_number


@bp.post("/projects/<int:project_id>/retrain")
@requires(*ADMINS, api=True)
def retrain(project_id: int):
    """Queue a retrain run (or return the one already queued or running)."""
    db = get_session()
    project = projects.get_project(db, project_id)
    run, created = runs.request_retrain(db, project, trigger="manual", now=utcnow())
    audit.record(db, g.user, "retrain.requested", project_id=project.id, target=run.id, now=utcnow(),
                 details={"created": created})
    db.commit()
    jobs.queued(run.id if created else None)
    return jsonify({"run_id": run.id, "status": run.status, "created": created}), 202


@bp.get("/projects/<int:project_id>/runs")
@requires(*REVIEWERS, api=True)
def list_runs(project_id: int):
    """List a project's retrain runs, newest first."""
    limit, offset = pagination()
    db = get_session()
    projects.get_project(db, project_id)
    items = runs.list_runs(db, project_id, limit=limit, offset=offset)
    return jsonify({"runs": [run_json(r, runs.model_version_of(db, r)) for r in items], "limit": limit, "offset": offset})


@bp.get("/runs/<int:run_id>")
@requires(*REVIEWERS, api=True)
def show_run(run_id: int):
    """Show one retrain run."""
    db = get_session()
    run = runs.get_run(db, run_id)
    return jsonify(run_json(run, runs.model_version_of(db, run)))


@bp.get("/projects/<int:project_id>/models")
@requires(*REVIEWERS, api=True)
def models(project_id: int):
    """List a project's model versions, newest first."""
    limit, offset = pagination()
    db = get_session()
    projects.get_project(db, project_id)
    return jsonify({"models": [model_json(m, snapshot_number(db, m)) for m in list_models(db, project_id, limit=limit, offset=offset)],
                    "limit": limit, "offset": offset})


@bp.post("/projects/<int:project_id>/predict")
@requires(*ADMINS, api=True)
def predict(project_id: int):
    """The champion's predictions; with enqueue_uncertain, unsure examples join the queue."""
    body = json_body()
    db = get_session()
    project = projects.get_project(db, project_id)
    threshold = body.get("uncertain_below", UNCERTAIN_BELOW)
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 < threshold <= 1:
        raise InvalidInput.one("must be a number in (0, 1]", field="uncertain_below")
    enqueue = body.get("enqueue_uncertain", False)
    if not isinstance(enqueue, bool):  # "false" is truthy: a string must not write to the pool
        raise InvalidInput.one("must be true or false", field="enqueue_uncertain")
    result = champion_predictions(db, project, body.get("examples"), enqueue_uncertain=enqueue,
                              uncertain_below=float(threshold), now=utcnow())
    db.commit()
    return jsonify(result)


@bp.get("/projects/<int:project_id>/webhook-deliveries")
@requires(*ADMINS, api=True)
def webhook_deliveries(project_id: int):
    """List a project's webhook deliveries, newest first (?status=pending|delivered|failed)."""
    limit, offset = pagination()
    status = request.args.get("status")
    if status not in (None, "pending", "delivered", "failed"):
        raise InvalidInput.one("must be pending, delivered or failed", field="status")
    db = get_session()
    projects.get_project(db, project_id)
    items = webhooks.list_deliveries(db, project_id, limit=limit, offset=offset, status=status)
    return jsonify({"deliveries": [delivery_json(d) for d in items], "limit": limit, "offset": offset})


@bp.post("/webhook-deliveries/<int:delivery_id>/redeliver")
@requires(*ADMINS, api=True)
def redeliver(delivery_id: int):
    """Send a webhook delivery again."""
    db = get_session()
    delivery = webhooks.redeliver(db, delivery_id, now=utcnow())
    db.commit()
    jobs.notify()
    return jsonify(delivery_json(delivery)), 202
