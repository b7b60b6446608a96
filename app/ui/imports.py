"""Importing a file from the browser: upload, preview with a field mapping, then import in the
background while a status page shows its progress."""

from __future__ import annotations

import secrets

from flask import flash, g, redirect, render_template, request, url_for

from app import jobs
from app.api.shapes import import_json
from app.auth import ADMINS, requires
from app.db import get_session
from app.ui import bp
from app.ui.import_preview import chosen_mapping, kept_import, peek_kept, peek_staged, staged, sweep_staged, upload_dir
from app.ui.runs import POLL_STOP
from labeling import audit, imports, projects, tasks, uploads
from labeling.db import reading, utcnow
from labeling.errors import NotFound, Problem
from labeling.formats import format_for_filename, peek_columns
from labeling.examples import MULTI_LABEL_ROW_FIELDS
from labeling.mapping import ROW_FIELDS, UNKNOWN_COLUMNS, check_mapping, guess_mapping
from labeling.models import ImportJob, Project
from labeling.problem_groups import describe


def _preview(project: Project, columns: list[str], sample: list[dict], mapping: dict[str, str], *,
             unknown: str = "meta", filename: str = "", token: str = "", from_import: int | None = None,
             problems: list[Problem] | None = None):
    """The mapping form; ``token`` or ``from_import`` names the file it maps (never uploaded twice)."""
    preview = {"columns": columns, "sample": sample, "guess": mapping}
    targets = MULTI_LABEL_ROW_FIELDS if tasks.is_multi_label(project) else ROW_FIELDS
    body = render_template("pages/import.html", project=project, preview=preview, targets=targets,
                           unknown=unknown, unknown_choices=UNKNOWN_COLUMNS, filename=filename, token=token,
                           from_import=from_import, problems=[str(p) for p in problems or []])
    return body, 422 if problems else 200


@bp.route("/projects/<int:project_id>/import", methods=["GET", "POST"])
@requires(*ADMINS)
def import_page(project_id: int):
    """Upload a file and preview it with a guessed mapping (GET shows the form, POST stages the file)."""
    db = get_session()
    project = projects.get_project(db, project_id)
    if request.method == "GET":
        recent, _ = imports.list_imports(db, project.id, limit=10)
        return render_template("pages/import.html", project=project, preview=None,
                               recent=[import_json(j) for j in recent])
    if project.archived_at:  # refused before the upload, not after the mapping
        flash("This project is archived: nothing can be imported into it.", "error")
        return redirect(url_for("ui.import_page", project_id=project_id))
    upload = request.files.get("file")
    fmt = format_for_filename(upload.filename or "") if upload else None
    if upload is None or not upload.filename:
        flash("Choose a file to import.", "error")
        return redirect(url_for("ui.import_page", project_id=project_id))
    if fmt is None:
        flash("The file must end in .jsonl, .csv or .parquet.", "error")
        return redirect(url_for("ui.import_page", project_id=project_id))
    sweep_staged()
    token = secrets.token_urlsafe(12)
    path = upload_dir() / f"{token}.{fmt}"
    upload.save(path)
    try:
        with path.open("rb") as stream:
            columns, sample = peek_columns(stream, fmt)
    except Exception as exc:  # any unreadable file: say so, keep nothing
        path.unlink(missing_ok=True)
        flash(f"Could not read the file: {exc}", "error")
        return redirect(url_for("ui.import_page", project_id=project_id))
    return _preview(project, columns, sample, guess_mapping(columns), filename=upload.filename, token=token)


@bp.get("/projects/<int:project_id>/imports/<int:import_id>/remap")
@requires(*ADMINS)
def import_remap(project_id: int, import_id: int):
    """Map the columns of a failed import's kept file again, starting from the mapping it had."""
    db = get_session()
    project = projects.get_project(db, project_id)
    failed = kept_import(db, project, import_id)
    columns, sample = peek_kept(db, failed)
    mapping = {c: (failed.rename or {}).get(c, guess) for c, guess in guess_mapping(columns).items()}
    return _preview(project, columns, sample, mapping, unknown=failed.unknown_columns or "meta",
                    filename=failed.filename or "", from_import=failed.id)


@bp.post("/projects/<int:project_id>/import/confirm")
@requires(*ADMINS)
def import_confirm(project_id: int):
    """Import the staged or kept file with the chosen field mapping; all or nothing. A mapping
    that cannot work shows the form again, the file still there."""
    db = get_session()
    project = projects.get_project(db, project_id)
    token, from_id = request.form.get("token", ""), request.form.get("from_import")
    failed = kept_import(db, project, from_id) if from_id else None
    fmt = failed.format if failed else staged(token)[1]
    rename, unknown = chosen_mapping(request.form)
    if problems := check_mapping(rename, unknown):
        columns, sample = peek_kept(db, failed) if failed else peek_staged(token)
        return _preview(project, columns, sample, rename, unknown=unknown if unknown in UNKNOWN_COLUMNS else "meta",
                        filename=request.form.get("filename", ""), token=token,
                        from_import=failed.id if failed else None, problems=problems)
    job = _start(project, fmt, rename, unknown, failed)
    if failed:
        uploads.take_upload(db, job, failed)
    else:
        path = staged(token)[0]
        try:
            with path.open("rb") as stream:
                imports.store_upload(db, job, stream)
        finally:
            path.unlink(missing_ok=True)
    jobs.import_queued(job.id)
    return redirect(url_for("ui.import_status", project_id=project_id, import_id=job.id))


def _start(project: Project, fmt: str, rename: dict[str, str], unknown: str, failed: ImportJob | None) -> ImportJob:
    """The new job and its audit event, from the form's choices."""
    db = get_session()
    source = (request.form.get("source") or "import").strip()
    update_duplicates = request.form.get("update_duplicates") == "1"
    filename = failed.filename if failed else request.form.get("filename")
    job = imports.start_import(db, project, fmt=fmt, source=source, update_duplicates=update_duplicates,
                               rename=rename, unknown_columns=unknown, filename=filename, created_by=g.user.id,
                               now=utcnow())
    details = {"format": fmt, "filename": job.filename, "on_duplicate": "update" if update_duplicates else "skip",
               "unknown_columns": unknown}
    if failed:
        details["mapped_again"] = failed.id
    audit.record(db, g.user, "import.started", project_id=project.id, target=job.id, now=utcnow(), details=details)
    return job


def _import_view(project_id: int, import_id: int):
    with reading(get_session()) as db:  # polled while the import writes: no write lock for a read
        project = projects.get_project(db, project_id)
        job = imports.get_import(db, import_id)
        if job.project_id != project.id:
            raise NotFound(f"no import with id {import_id} in this project")
        shown = import_json(job)
        shown["grouped"] = [describe(group) for group in job.problem_groups or []]
        shown["kept"] = uploads.is_kept(db, job)  # the file can be mapped again
        return project, shown


@bp.get("/projects/<int:project_id>/imports/<int:import_id>")
@requires(*ADMINS)
def import_status(project_id: int, import_id: int):
    """An import's progress, then its outcome (counts, or the problems by line)."""
    project, job = _import_view(project_id, import_id)
    return render_template("pages/import_status.html", project=project, job=job)


@bp.get("/projects/<int:project_id>/imports/<int:import_id>/fragment")
@requires(*ADMINS)
def import_status_fragment(project_id: int, import_id: int):
    """The live part of the status page; stops the polling once the import has finished."""
    project, job = _import_view(project_id, import_id)
    body = render_template("partials/_import_status.html", project=project, job=job)
    return body, POLL_STOP if job["status"] in imports.FINISHED else 200
