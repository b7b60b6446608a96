"""Project list and project page."""

from __future__ import annotations

from flask import flash, g, redirect, render_template, request, url_for

from app.api.shapes import webhook_host
from app.auth import ADMINS, ANY_ROLE, requires
from app.db import get_session
from app.ui import bp, page_number
from labeling import audit, projects
from labeling.db import utcnow
from labeling.errors import InvalidInput

PAGE_SIZE = 50


@bp.get("/")
@requires(*ANY_ROLE)
def index():
    """List projects with their progress."""
    return _index()


@bp.get("/projects")
@requires(*ANY_ROLE)
def projects_list():
    """The project list lives at ``/``; a typed or bookmarked ``/projects`` goes there (not a 405)."""
    return redirect(url_for("ui.index", **request.args))


def _index(errors: list[str] | None = None, status: int = 200):
    db = get_session()
    page = page_number()
    items = projects.list_projects(db, limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE, visible_by=g.user)
    has_more = len(items) > PAGE_SIZE
    rows = [(p, projects.project_counts(db, p.id)) for p in items[:PAGE_SIZE]]
    return render_template("pages/index.html", rows=rows, page=page, has_more=has_more, errors=errors), status


@bp.post("/projects")
@requires(*ADMINS)
def create_project():
    """Create a project from the form."""
    db = get_session()
    name = request.form.get("name", "")
    labels = [l.strip() for l in request.form.get("labels", "").split(",") if l.strip()]
    try:
        project = projects.create_project(db, name, labels, {"task": request.form.get("task") or "single_label"},
                                          now=utcnow())
    except InvalidInput as exc:
        db.rollback()
        return _index(errors=[str(p) for p in exc.problems], status=422)
    audit.record(db, g.user, "project.created", project_id=project.id, target=project.name, now=utcnow())
    db.commit()
    flash(f"Project {project.name!r} created.")
    return redirect(url_for("ui.project", project_id=project.id))


@bp.get("/projects/<int:project_id>")
@requires(*ANY_ROLE)
def project(project_id: int):
    """Show a project: counts, labels, and what to do next."""
    db = get_session()
    proj = projects.get_project(db, project_id)
    counts = projects.project_counts(db, proj.id)
    shown = {k: v for k, v in proj.settings.items() if k != "webhook_secret"}
    if g.role != "admin":
        shown["webhook_url"] = webhook_host(shown.get("webhook_url", ""))
    if g.role == "annotator":  # nothing there an annotator can act on
        shown = {}
    return render_template("pages/project.html", project=proj, counts=counts, settings=shown,
                           champion=projects.champion_version(db, proj), user=g.user, role=g.role)
