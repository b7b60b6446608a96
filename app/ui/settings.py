"""The project settings page (admin): settings, members, the webhook's secret and a test event,
archive, delete. Every form works without JavaScript (whole page) and with htmx (the settings
section alone, errors included, with a 200: htmx swaps no 4xx answer)."""

from __future__ import annotations

import re
from typing import Any

from flask import flash, g, redirect, render_template, request, url_for

from app import jobs
from app.auth import ADMINS, requires
from app.db import get_session
from app.ui import bp
from labeling import access, audit, project_edits, projects, runs, users, webhooks
from labeling.db import reading, utcnow
from labeling.deletion import delete_project
from labeling.errors import InvalidInput
from labeling.models import MEMBER_ROLES, Project
from labeling.projects import FEATURIZERS, PROMOTION_METRICS, STRATEGIES, SUGGESTION_MODES, config

# The settings the page edits, in its order; the API takes every one (PATCH .../projects/<id>).
FORM_SETTINGS = ("strategy", "retrain_threshold", "overlap", "featurizer", "holdout_fraction", "suggestions",
                 "blind_share", "webhook_url", "random_share", "diverse_batches", "typical_picks", "promotion_metric",
                 "queue_seed")
DECIMAL_SETTINGS = ("holdout_fraction", "blind_share", "random_share")
BOOLEAN_SETTINGS = ("diverse_batches", "typical_picks")  # a select of true / false: an unticked box sends nothing
INTEGER = re.compile(r"-?\d{1,18}")
MAX_USERS_OFFERED = 1000


def _render(project: Project, *, errors: dict[str, str] | None = None, notice: str | None = None,
            secret: str | None = None, test: webhooks.WebhookTestResult | None = None, form: dict[str, Any] | None = None,
            status: int = 200) -> Any:
    """The whole page, or for an htmx request the settings section alone."""
    db = get_session()
    partial = bool(request.headers.get("HX-Request"))
    body = render_template(
        "partials/_settings.html" if partial else "pages/settings.html", project=project, settings=config(project),
        form=form or {}, errors=errors or {}, notice=notice, secret=secret, test=test,
        members=access.list_members(db, project.id), member_roles=MEMBER_ROLES, strategies=STRATEGIES,
        featurizers=FEATURIZERS, suggestion_modes=SUGGESTION_MODES, promotion_metrics=PROMOTION_METRICS,
        users=[u.name for u in users.list_users(db, limit=MAX_USERS_OFFERED) if u.active])
    return body, 200 if partial else status


@bp.post("/projects/<int:project_id>/settings/name-and-labels")
@requires(*ADMINS)
def save_name_and_labels(project_id: int):
    """Rename the project and add labels to its set (comma-separated); errors beside their fields."""
    db = get_session()
    project = projects.get_project(db, project_id)
    added_text = request.form.get("add_labels", "")
    try:
        renamed = project_edits.rename_project(db, project, request.form.get("name", ""), actor=g.user, now=utcnow())
        added = project_edits.add_labels(db, project, [n for n in added_text.split(",") if n.strip()], actor=g.user,
                                         now=utcnow()) if added_text.strip() else []
    except InvalidInput as exc:
        db.rollback()
        return _render(project, errors=_field_errors(exc), form=request.form, status=422)
    db.commit()
    already = [n for n in dict.fromkeys(n.strip() for n in added_text.split(",") if n.strip()) if n not in added]
    said = ([f"Renamed to {project.name!r}."] if renamed else []) + (
        [f"Added {', '.join(added)} (keys: {', '.join(l['hotkey'] or '–' for l in project.labels if l['name'] in added)})."]
        if added else []) + ([f"Already in the set: {', '.join(already)}."] if already else [])
    return _render(project, notice=" ".join(said) or "Nothing changed.")


def _form_value(key: str, raw: str) -> Any:
    """A form field as the settings registry checks it: numbers as numbers when they read as
    one, else the text (which the registry then refuses, naming the field)."""
    raw = raw.strip()
    if key in ("retrain_threshold", "overlap", "queue_seed") and INTEGER.fullmatch(raw):
        return int(raw)
    if key == "queue_seed" and not raw:
        return None  # empty: fresh randomness, as the project reads it
    if key in BOOLEAN_SETTINGS and raw in ("true", "false"):
        return raw == "true"
    if key in DECIMAL_SETTINGS:
        try:
            return float(raw)
        except ValueError:
            return raw
    return raw


def _field_errors(exc: InvalidInput, prefix: str = "settings.") -> dict[str, str]:
    return {(p.field or "").removeprefix(prefix) or "form": p.message for p in exc.problems}


@bp.get("/projects/<int:project_id>/settings")
@requires(*ADMINS)
def settings_page(project_id: int):
    """Show the project's settings, members, webhook, archive and delete forms."""
    with reading(get_session()) as db:
        return _render(projects.get_project(db, project_id))


@bp.post("/projects/<int:project_id>/settings")
@requires(*ADMINS)
def save_settings(project_id: int):
    """Save the settings form (the same checks as the API); errors beside their fields."""
    db = get_session()
    project = projects.get_project(db, project_id)
    current = config(project)
    given = {key: _form_value(key, request.form.get(key, "")) for key in FORM_SETTINGS if key in request.form}
    changed = {key: value for key, value in given.items() if value != getattr(current, key)}
    if not changed:
        return _render(project, notice="Nothing changed.")
    secret_before = current.webhook_secret
    try:
        projects.update_settings(db, project, changed)
    except InvalidInput as exc:
        db.rollback()
        return _render(project, errors=_field_errors(exc), form=request.form, status=422)
    audit.record(db, g.user, "project.settings_changed", project_id=project.id, target=project.name, now=utcnow(),
                 details={"keys": sorted(changed)})
    run_id = runs.request_after_settings(db, project, changed, now=utcnow())
    db.commit()
    jobs.queued(run_id)
    secret = config(project).webhook_secret
    rescoring = f" Run {run_id} re-orders the queue with the new strategy." if run_id else ""
    return _render(project, notice=f"Saved: {', '.join(sorted(changed))}.{rescoring}",
                   secret=secret if secret and secret != secret_before else None)


@bp.post("/projects/<int:project_id>/members")
@requires(*ADMINS)
def save_members(project_id: int):
    """Replace the member list from the form: each member's role (or removal), plus one to add."""
    db = get_session()
    project = projects.get_project(db, project_id)
    wanted, fields = [], []
    for name in request.form.getlist("member"):
        role = request.form.get(f"role:{name}", "")
        if role != "remove":
            wanted.append({"user": name, "role": role})
            fields.append(f"role:{name}")
    new_user = request.form.get("new_user", "").strip()
    if new_user:
        wanted.append({"user": new_user, "role": request.form.get("new_role", "")})
        fields.append("new_user")
    try:
        access.replace_members(db, project, wanted, actor=g.user, now=utcnow())
    except InvalidInput as exc:
        db.rollback()
        errors = {}
        for problem in exc.problems:
            index = re.match(r"members\[(\d+)\]", problem.field or "")
            errors[fields[int(index.group(1))] if index else "members"] = problem.message
        return _render(project, errors=errors, form=request.form, status=422)
    db.commit()
    listed = access.list_members(db, project.id)
    return _render(project, notice=f"Members saved: {len(listed)}." if listed else "Open to every user.")


@bp.post("/projects/<int:project_id>/webhook-secret")
@requires(*ADMINS)
def rotate_secret(project_id: int):
    """Replace the webhook secret with a new generated one, shown once."""
    db = get_session()
    project = projects.get_project(db, project_id)
    secret = projects.rotate_webhook_secret(db, project, actor=g.user, now=utcnow())
    db.commit()
    return _render(project, notice="New webhook secret: give it to the receiver now.", secret=secret)


@bp.post("/projects/<int:project_id>/webhook-test")
@requires(*ADMINS)
def test_webhook(project_id: int):
    """Send a signed test event to the webhook URL now and show what came back."""
    db = get_session()
    with reading(db):
        project = projects.get_project(db, project_id)
    db.commit()  # no transaction while the receiver answers (PostgreSQL's reading() keeps one open)
    try:
        result = webhooks.send_test_event(project, now=utcnow())
    except InvalidInput as exc:
        return _render(project, errors=_field_errors(exc), status=422)
    audit.record(db, g.user, "project.webhook_tested", project_id=project.id, target=project.name, now=utcnow(),
                 details={"url": result.url, "status_code": result.status_code, "error": result.error})
    db.commit()
    return _render(project, test=result)


@bp.post("/projects/<int:project_id>/archive")
@requires(*ADMINS)
def archive(project_id: int):
    """Archive (read-only, hidden from annotators) or unarchive the project."""
    db = get_session()
    project = projects.get_project(db, project_id)
    archived = request.form.get("archived") == "1"
    projects.set_archived(db, project, archived, actor=g.user, now=utcnow())
    db.commit()
    return _render(project, notice="Archived: read-only, hidden from annotators." if archived else "Unarchived.")


@bp.post("/projects/<int:project_id>/delete")
@requires(*ADMINS)
def delete(project_id: int):
    """Delete the project and everything of it, once its name is typed."""
    db = get_session()
    project = projects.get_project(db, project_id)
    name = project.name
    try:
        delete_project(db, project, request.form.get("confirm", ""), actor=g.user, now=utcnow())
    except InvalidInput as exc:
        db.rollback()
        return _render(project, errors=_field_errors(exc), status=422)
    db.commit()
    flash(f"Project {name!r} and everything of it were deleted.")
    if request.headers.get("HX-Request"):
        return "", 200, {"HX-Redirect": url_for("ui.index")}
    return redirect(url_for("ui.index"))
