"""Retrain runs, model versions and webhook deliveries: a page with a self-polling fragment."""

from __future__ import annotations

from flask import flash, g, redirect, render_template, url_for

from app import jobs
from app.auth import ADMINS, REVIEWERS, requires
from app.db import get_session
from app.ui import bp
from app.api.shapes import delivery_json, model_json, run_json
from labeling import audit, projects, registry, runs, webhooks
from labeling.db import utcnow

POLL_STOP = 286  # htmx stops polling on this status


def _runs_fragment(project_id: int):
    db = get_session()
    project = projects.get_project(db, project_id)
    items = [run_json(r, runs.model_version_of(db, r)) for r in runs.list_runs(db, project_id, limit=20)]
    models = [model_json(m, registry.snapshot_number(db, m)) for m in registry.list_models(db, project_id, limit=20)]
    deliveries = [delivery_json(d) for d in webhooks.list_deliveries(db, project_id, limit=20)]
    busy = any(r["status"] in runs.ACTIVE for r in items) or any(d["status"] == "pending" for d in deliveries)
    return project, items, models, deliveries, busy


@bp.get("/projects/<int:project_id>/runs")
@requires(*REVIEWERS)
def runs_page(project_id: int):
    """Show runs, model versions and webhook deliveries."""
    project, items, models, deliveries, busy = _runs_fragment(project_id)
    return render_template("pages/runs.html", project=project, runs=items, models=models, deliveries=deliveries, busy=busy)


@bp.get("/projects/<int:project_id>/runs/fragment")
@requires(*REVIEWERS)
def runs_fragment(project_id: int):
    """The live part of the runs page; stops the polling once nothing is running."""
    project, items, models, deliveries, busy = _runs_fragment(project_id)
    body = render_template("partials/_runs.html", project=project, runs=items, models=models, deliveries=deliveries, busy=busy)
    return body, 200 if busy else POLL_STOP


@bp.post("/projects/<int:project_id>/retrain")
@requires(*ADMINS)
def retrain(project_id: int):
    """Queue a retrain run now."""
    db = get_session()
    project = projects.get_project(db, project_id)
    run, created = runs.request_retrain(db, project, trigger="manual", now=utcnow())
    audit.record(db, g.user, "retrain.requested", project_id=project.id, target=run.id, now=utcnow(),
                 details={"created": created})
    db.commit()
    jobs.queued(run.id if created else None)
    flash(f"Run {run.id} queued." if created else f"Run {run.id} is already {run.status}.")
    return redirect(url_for("ui.runs_page", project_id=project_id))


@bp.post("/webhook-deliveries/<int:delivery_id>/redeliver")
@requires(*ADMINS)
def redeliver(delivery_id: int):
    """Send a webhook delivery again."""
    db = get_session()
    delivery = webhooks.redeliver(db, delivery_id, now=utcnow())
    db.commit()
    jobs.notify()
    flash(f"Delivery {delivery.msg_id} will be sent again.")
    return redirect(url_for("ui.runs_page", project_id=delivery.project_id))
