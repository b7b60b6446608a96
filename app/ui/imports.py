"""Importing a file from the browser: upload, preview with a field mapping, then import in the
background while a status page shows its progress."""

from __future__ import annotations

import secrets
from pathlib import Path

from flask import current_app, flash, g, redirect, render_template, request, url_for

from app import jobs
from app.api.shapes import import_json
from app.auth import ADMINS, requires
from app.db import get_session
from app.ui import bp
from app.ui.runs import POLL_STOP
from labeling import audit, imports, projects
from labeling.db import reading, utcnow
from labeling.errors import InvalidInput, NotFound
from labeling.examples import ROW_FIELDS
from labeling.formats import format_for_filename, peek_columns

TARGETS = ("external_id", "text", "image", "features", "label", "meta")


def _upload_dir() -> Path:
    folder = Path(current_app.instance_path) / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _staged(token: str) -> tuple[Path, str]:
    """The staged upload named by ``token`` (letters, digits, - and _ only: no path tricks)."""
    if not token or not all(c.isalnum() or c in "-_" for c in token):
        raise InvalidInput.one("the upload expired; choose the file again", field="file")
    matches = list(_upload_dir().glob(f"{token}.*"))
    if not matches:
        raise InvalidInput.one("the upload expired; choose the file again", field="file")
    return matches[0], matches[0].suffix.lstrip(".")


@bp.route("/projects/<int:project_id>/import", methods=["GET", "POST"])
@requires(*ADMINS)
def import_page(project_id: int):
    """Upload a file and preview it (GET shows the form, POST stages the file)."""
    db = get_session()
    project = projects.get_project(db, project_id)
    if request.method == "GET":
        recent, _ = imports.list_imports(db, project.id, limit=10)
        return render_template("pages/import.html", project=project, preview=None,
                               recent=[import_json(j) for j in recent])
    upload = request.files.get("file")
    fmt = format_for_filename(upload.filename or "") if upload else None
    if upload is None or not upload.filename:
        flash("Choose a file to import.", "error")
        return redirect(url_for("ui.import_page", project_id=project_id))
    if fmt is None:
        flash("The file must end in .jsonl, .csv or .parquet.", "error")
        return redirect(url_for("ui.import_page", project_id=project_id))
    token = secrets.token_urlsafe(12)
    path = _upload_dir() / f"{token}.{fmt}"
    upload.save(path)
    try:
        with path.open("rb") as stream:
            columns, sample = peek_columns(stream, fmt)
    except Exception as exc:  # any unreadable file: say so, keep nothing
        path.unlink(missing_ok=True)
        flash(f"Could not read the file: {exc}", "error")
        return redirect(url_for("ui.import_page", project_id=project_id))
    guess = {c: (c if c in ROW_FIELDS else "") for c in columns}
    return render_template("pages/import.html", project=project, token=token, filename=upload.filename,
                           preview={"columns": columns, "sample": sample, "guess": guess}, targets=TARGETS)


@bp.post("/projects/<int:project_id>/import/confirm")
@requires(*ADMINS)
def import_confirm(project_id: int):
    """Import the staged file with the chosen field mapping; all or nothing."""
    db = get_session()
    project = projects.get_project(db, project_id)
    path, fmt = _staged(request.form.get("token", ""))
    rename = {}
    for key, target in request.form.items():
        if key.startswith("map:") and target:
            if target not in TARGETS:
                raise InvalidInput.one(f"map a column to one of {', '.join(TARGETS)}", field=key[4:])
            rename[key[4:]] = target
    if list(rename.values()).count("external_id") != 1:
        flash("Choose exactly one column as the external id.", "error")
        return redirect(url_for("ui.import_page", project_id=project_id))
    source = (request.form.get("source") or "import").strip()
    update_duplicates = request.form.get("update_duplicates") == "1"
    try:
        job = imports.start_import(db, project, fmt=fmt, source=source, update_duplicates=update_duplicates,
                                   rename=rename, filename=request.form.get("filename"), created_by=g.user.id,
                                   now=utcnow())
        audit.record(db, g.user, "import.started", project_id=project.id, target=job.id, now=utcnow(),
                     details={"format": fmt, "filename": job.filename, "on_duplicate": "update" if update_duplicates else "skip"})
        with path.open("rb") as stream:
            imports.store_upload(db, job, stream)
    finally:
        path.unlink(missing_ok=True)
    jobs.import_queued(job.id)
    return redirect(url_for("ui.import_status", project_id=project_id, import_id=job.id))


def _import_view(project_id: int, import_id: int):
    with reading(get_session()) as db:  # polled while the import writes: no write lock for a read
        project = projects.get_project(db, project_id)
        job = imports.get_import(db, import_id)
        if job.project_id != project.id:
            raise NotFound(f"no import with id {import_id} in this project")
        return project, import_json(job)


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
