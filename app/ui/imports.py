"""Importing a file from the browser: upload, preview with a field mapping, then import."""

from __future__ import annotations

import secrets
from pathlib import Path

from flask import current_app, flash, redirect, render_template, request, url_for

from app import jobs
from app.api.links import api_links
from app.auth import ADMINS, requires
from app.db import get_session
from app.ui import bp
from labeling import projects
from labeling.db import utcnow
from labeling.errors import InvalidInput
from labeling.examples import ROW_FIELDS, import_examples
from labeling.formats import format_for_filename, peek_columns, read_rows
from labeling.runs import request_after_import

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
        return render_template("pages/import.html", project=project, preview=None)
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
        with path.open("rb") as stream:
            result = import_examples(db, project, read_rows(stream, fmt, rename=rename), source=source, now=utcnow(),
                                     update_duplicates=update_duplicates)
    except InvalidInput as exc:
        db.rollback()
        return render_template("pages/import.html", project=project, preview=None, problems=exc.problems,
                               total=exc.total), 422
    finally:
        path.unlink(missing_ok=True)
    run_id = request_after_import(db, project, labels=result.labels, now=utcnow(), links=api_links())
    db.commit()
    jobs.queued(run_id)
    dealt = f"{result.updated} duplicates updated" if update_duplicates else f"{result.duplicates} duplicates skipped"
    flash(f"Imported {result.imported} examples ({dealt}, {result.labels} labels).")
    return redirect(url_for("ui.project", project_id=project_id))
