"""Exporting label sets from the browser: the current labels or a snapshot, in a chosen format;
freezing the current labels as a new snapshot. The same functions as the API (app/exports.py)."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for

from app.auth import ADMINS, requires
from app.db import get_session
from app.exports import export_response, freeze_snapshot, snapshot_from_text
from app.ui import bp, page_number
from labeling import projects
from labeling.export import ANNOTATIONS, EXPORT_FORMATS
from labeling.snapshots import find_snapshot, list_snapshots, unchanged_since

PAGE_SIZE = 20


@bp.get("/projects/<int:project_id>/export")
@requires(*ADMINS)
def export_page(project_id: int):
    """The export form and the project's snapshots, the newest first, a page at a time."""
    db = get_session()
    project = projects.get_project(db, project_id)
    page = page_number()
    items = list_snapshots(db, project.id, limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE)
    chosen, missing = request.args.get("snapshot", "").strip(), None
    if chosen and ((number := snapshot_from_text(chosen)) is None or find_snapshot(db, project, number) is None):
        chosen, missing = "", chosen  # said on the page, never a silent download of something else
    return render_template("pages/export.html", project=project, snapshots=items[:PAGE_SIZE], page=page,
                           has_more=len(items) > PAGE_SIZE, formats=EXPORT_FORMATS, annotations=ANNOTATIONS,
                           labeled=projects.labeling_progress(db, project.id)["labeled"],
                           chosen=chosen, missing=missing)


@bp.get("/projects/<int:project_id>/export/download")
@requires(*ADMINS)
def export_download(project_id: int):
    """The chosen label set as a file. A bad format: the error page names the field; a bad or
    missing snapshot: back to the form, which says so. The form's empty snapshot number means the
    current labels (the API refuses an empty one)."""
    args = {k: v for k, v in request.args.items() if not (k == "snapshot" and not v.strip())}
    if "snapshot" in args:  # not a number, or no such snapshot: back to the form, which says so beside the field
        number, db = snapshot_from_text(args["snapshot"]), get_session()
        if number is None or find_snapshot(db, projects.get_project(db, project_id), number) is None:
            return redirect(url_for("ui.export_page", project_id=project_id, snapshot=args["snapshot"]))
    return export_response(project_id, args)


@bp.post("/projects/<int:project_id>/export/snapshots")
@requires(*ADMINS)
def export_snapshot(project_id: int):
    """Freeze the current labels as the next snapshot, unless the latest one already holds them."""
    db = get_session()
    project = projects.get_project(db, project_id)
    latest = unchanged_since(db, project)
    if latest is not None:
        flash(f"No label or example changed since snapshot {latest.number} ({latest.n_labels} labels): no new snapshot.")
        return redirect(url_for("ui.export_page", project_id=project_id, snapshot=latest.number))
    snapshot = freeze_snapshot(project)
    flash(f"Snapshot {snapshot.number} frozen: {snapshot.n_labels} labels, the same in every later export.")
    return redirect(url_for("ui.export_page", project_id=project_id, snapshot=snapshot.number))
