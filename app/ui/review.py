"""Reviewing flagged labels, one at a time, keyboard first; annotator quality for admins."""

from __future__ import annotations

from flask import g, render_template, request

from app.auth import ADMINS, REVIEWERS, requires
from app.db import get_session
from app.ui import bp
from labeling import projects, quality
from labeling.db import utcnow
from labeling.errors import Conflict
from labeling.examples import get_example
from labeling.models import Project


def _render_top_flag(project: Project, *, notice: str | None = None, page: bool = False):
    db = get_session()
    rows = quality.list_flags(db, project.id, status="open", limit=1)
    flag = rows[0][0] if rows else None
    example = get_example(db, flag.example_id) if flag else None
    remaining = projects.project_counts(db, project.id)["open_flags"]
    template = "pages/review.html" if page else "partials/_review.html"
    return render_template(template, project=project, flag=flag, example=example, remaining=remaining, notice=notice,
                           label_check=quality.label_check_summary(db, project.id))


@bp.get("/projects/<int:project_id>/review")
@requires(*REVIEWERS)
def review_page(project_id: int):
    """Show the most suspicious open flag."""
    return _render_top_flag(projects.get_project(get_session(), project_id), page=True)


@bp.post("/projects/<int:project_id>/review/<int:flag_id>")
@requires(*REVIEWERS)
def review_resolve(project_id: int, flag_id: int):
    """Confirm, correct or dismiss a flag; answer with the next one."""
    db = get_session()
    project = projects.get_project(db, project_id)
    try:
        flag = quality.resolve_flag(db, flag_id, g.user, request.form.get("action"), request.form.get("label"),
                                    now=utcnow())
    except Conflict as exc:
        db.rollback()
        return _render_top_flag(project, notice=exc.message)
    db.commit()
    return _render_top_flag(project, notice=f"Flag {flag.status}.")


@bp.get("/projects/<int:project_id>/quality")
@requires(*ADMINS)
def annotator_quality(project_id: int):
    """Per-annotator label counts, flag rates and agreement with reviewed gold."""
    db = get_session()
    project = projects.get_project(db, project_id)
    return render_template("pages/quality.html", project=project, rows=quality.annotator_quality(db, project.id))
