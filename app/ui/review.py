"""Reviewing flagged labels, one at a time, keyboard first; annotator quality for admins."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlsplit

from flask import flash, g, redirect, render_template, request, url_for

from app.auth import ADMINS, REVIEWERS, requires
from app.db import get_session
from app.ui import bp, filter_args, form_annotation
from app.ui.label import UNDO_AFTER_RELOAD  # a decision is taken back as long as a label is undone
from labeling import projects, quality, reopening
from labeling.db import utcnow
from labeling.errors import Conflict, InvalidInput
from labeling.examples import get_example
from labeling.models import FLAG_REASONS, Project

FILTER_ARGS = ("reason", "min_score", "max_score")
LIST_SIZE = 100


def _render_top_flag(project: Project, *, notice: str | None = None, page: bool = False,
                     listing: dict[str, Any] | None = None, shown: Any = None):
    """The review card: ``shown`` (a flag just reopened) or the most suspicious open flag, and a way
    to take back my last decision of the past hour (after a reload too)."""
    db = get_session()
    decided = reopening.last_decision(db, project.id, g.user, since=utcnow() - UNDO_AFTER_RELOAD)
    rows = [] if shown is not None else quality.list_flags(db, project.id, status="open", limit=1)
    flag = shown if shown is not None else (rows[0][0] if rows else None)
    example = get_example(db, flag.example_id) if flag else None
    remaining = projects.project_counts(db, project.id)["open_flags"]
    template = "pages/review.html" if page else "partials/_review.html"
    return render_template(template, project=project, flag=flag, example=example, remaining=remaining, notice=notice,
                           label_check=quality.label_check_summary(db, project.id), decided=decided and decided.id,
                           **(listing or {}))


def _flag_list(project: Project, args: dict[str, str]) -> dict[str, Any]:
    """What the open-flags list shows: the open flags matching the filters in ``args``, or the
    filters' errors."""
    shown = {"args": args, "reasons": FLAG_REASONS, "list_size": LIST_SIZE}
    try:
        filters = quality.parse_flag_filters(args)
    except InvalidInput as exc:
        return {**shown, "flags": [], "errors": {p.field or "form": p.message for p in exc.problems}}
    rows = quality.list_flags(get_session(), project.id, status="open", limit=LIST_SIZE, filters=filters)
    return {**shown, "flags": rows, "errors": {}}


@bp.get("/projects/<int:project_id>/review")
@requires(*REVIEWERS)
def review_page(project_id: int):
    """Show the most suspicious open flag, and the open flags (filtered) to dismiss in bulk; an
    htmx request from the filter form gets the list alone."""
    project = projects.get_project(get_session(), project_id)
    listing = _flag_list(project, filter_args(request.args, FILTER_ARGS))
    if request.headers.get("HX-Request") and request.headers.get("HX-Target") == "flag-list":
        return render_template("partials/_flag_list.html", project=project, **listing)  # htmx swaps no 4xx answer
    page = _render_top_flag(project, page=True, listing=listing)
    return page, 422 if listing["errors"] else 200


@bp.post("/projects/<int:project_id>/review/dismiss")
@requires(*REVIEWERS)
def review_dismiss_selected(project_id: int):
    """Dismiss the selected open flags in one transaction, after a confirmation step (no JS needed)."""
    db = get_session()
    project = projects.get_project(db, project_id)
    ids = [int(v) for v in request.form.getlist("flag_id") if v.isdigit() and len(v) < 19]
    back = url_for("ui.review_page", project_id=project.id,
                   **filter_args(request.form, FILTER_ARGS))
    if not ids:
        flash("Select the flags to dismiss first.")
        return redirect(back)
    if request.form.get("confirm") != "yes":
        selected = quality.list_flags(db, project.id, status=None, ids=ids[:quality.MAX_BULK], limit=quality.MAX_BULK)
        return render_template("pages/review_confirm.html", project=project, ids=ids, selected=selected, back=back,
                               args={k: request.form.get(k, "") for k in FILTER_ARGS})
    try:
        dismissed, skipped = quality.dismiss_flags(db, project.id, ids, g.user, now=utcnow())
    except (Conflict, InvalidInput) as exc:
        db.rollback()
        flash(exc.message)
        return redirect(back)
    db.commit()
    notice = f"{dismissed} dismissed"
    if skipped:
        notice += f", {skipped} {'was' if skipped == 1 else 'were'} already resolved"
    flash(notice + ".")
    return redirect(back)


@bp.post("/projects/<int:project_id>/review/<int:flag_id>")
@requires(*REVIEWERS)
def review_resolve(project_id: int, flag_id: int):
    """Confirm, correct or dismiss a flag; answer with the next one."""
    db = get_session()
    project = projects.get_project(db, project_id)
    try:
        action = request.form.get("action")
        flag = quality.resolve_flag(db, flag_id, g.user, action, form_annotation(project) if action == "correct" else None,
                                    now=utcnow())
    except Conflict as exc:
        db.rollback()
        return _render_top_flag(project, notice=exc.message, listing=_listing_of_the_page(project))
    db.commit()
    return _render_top_flag(project, notice=f"Flag {flag.status}.", listing=_listing_of_the_page(project))


@bp.post("/projects/<int:project_id>/review/<int:flag_id>/reopen")
@requires(*REVIEWERS)
def review_reopen(project_id: int, flag_id: int):
    """Take back the decision just made (a misclick): the flag is open again, and shown next."""
    db = get_session()
    project = projects.get_project(db, project_id)
    try:
        flag = reopening.reopen_flag(db, flag_id, g.user, now=utcnow())
    except Conflict as exc:
        db.rollback()
        return _render_top_flag(project, notice=exc.message, listing=_listing_of_the_page(project))
    db.commit()
    return _render_top_flag(project, notice="Decision taken back: the flag is open again.",
                            listing=_listing_of_the_page(project), shown=flag)


def _listing_of_the_page(project: Project) -> dict[str, Any]:
    """The open-flags list as the page below shows it (its filters are in the page's address, which
    htmx sends), swapped out of band so a flag resolved by keyboard leaves the list too."""
    query = dict(parse_qsl(urlsplit(request.headers.get("HX-Current-URL", "")).query))
    return {"list_out_of_band": True, **_flag_list(project, filter_args(query, FILTER_ARGS))}


@bp.get("/projects/<int:project_id>/quality")
@requires(*ADMINS)
def annotator_quality(project_id: int):
    """Per-annotator label counts, flag rates and agreement with reviewed gold."""
    db = get_session()
    project = projects.get_project(db, project_id)
    return render_template("pages/quality.html", project=project, rows=quality.annotator_quality(db, project.id))
