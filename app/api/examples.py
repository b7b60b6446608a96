"""Importing and reading examples; snapshots and export."""

from __future__ import annotations

import io

from flask import current_app, g, jsonify, request, url_for

from app.api import bp
from app import jobs
from app.api.common import pagination
from app.errors import api_error
from app.auth import ADMINS, requires
from app.db import get_session
from app.api.shapes import import_json
from app.exports import export_response, freeze_snapshot
from labeling import audit, imports, projects
from labeling.db import reading, utcnow
from labeling.errors import InvalidInput
from labeling.examples import json_rows
from labeling.formats import FORMATS, format_for_filename
from labeling.imports import JSON_BODY
from labeling.mapping import UNKNOWN_COLUMNS


@bp.post("/projects/<int:project_id>/examples")
@requires(*ADMINS, api=True)
def import_project_examples(project_id: int):
    """Import examples from a JSON body or an uploaded JSONL/CSV/Parquet file; all or nothing.

    The import runs in the background; the request waits for it up to ``?wait=`` seconds
    (default ``IMPORT_WAIT_SECONDS``): 201 with the counts if it finished, 422 with the problems
    if the input was invalid, else 202 with the import to poll at ``/api/v1/imports/<id>``."""
    wait = _wait_seconds()
    db = get_session()
    project = projects.get_project(db, project_id)
    if request.files:
        upload = request.files.get("file")
        if upload is None:
            raise InvalidInput.one("send the file in the multipart field 'file'", field="file")
        fmt = request.form.get("format") or format_for_filename(upload.filename or "")
        if fmt not in FORMATS:
            raise InvalidInput.one("the file must end in .jsonl, .csv or .parquet (or pass format)", field="file")
        stream, filename = upload.stream, upload.filename
        options = {k: v for k, v in request.form.items() if v != ""}  # an empty form field is left out
    else:
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or "examples" not in body:
            raise InvalidInput.one('send {"examples": [...]} as JSON, or a multipart file', field="examples")
        problem = next(json_rows(body["examples"]), None)
        if problem is not None and problem.problem is not None and problem.problem.field == "examples":
            raise InvalidInput(problem.problem.message, [problem.problem])
        stream, fmt, filename = io.BytesIO(request.get_data()), JSON_BODY, None
        options = body
    # Each option from the body (or form), else from the query string, as ``wait`` is read.
    source = options.get("source", request.args.get("source", "import"))
    on_duplicate = options.get("on_duplicate", request.args.get("on_duplicate", "skip"))
    unknown = options.get("unknown_columns", request.args.get("unknown_columns", "error"))
    if on_duplicate not in ("skip", "update"):
        raise InvalidInput.one("must be 'skip' (the default) or 'update'", field="on_duplicate")
    if unknown not in ("error", *UNKNOWN_COLUMNS):
        raise InvalidInput.one("must be 'error' (the default), 'meta' or 'drop'", field="unknown_columns")
    job = imports.start_import(db, project, fmt=fmt, source=source, update_duplicates=on_duplicate == "update",
                               unknown_columns=None if unknown == "error" else unknown,
                               filename=filename, created_by=g.user.id, now=utcnow())
    audit.record(db, g.user, "import.started", project_id=project.id, target=job.id, now=utcnow(),
                 details={"format": fmt, "filename": filename, "on_duplicate": on_duplicate, "unknown_columns": unknown})
    imports.store_upload(db, job, stream)  # commits the job and the event with the file's first piece
    jobs.import_queued(job.id)
    job = imports.wait_for(db, job.id, seconds=wait)
    if job.status == "succeeded":
        return jsonify({"imported": job.imported, "duplicates": job.duplicates, "labels": job.labels,
                        "updated": job.updated, "import_id": job.id}), 201
    if job.status == "failed":
        if job.n_problems:
            raise imports.invalid_input(job)
        return api_error(500, f"the import failed: {import_json(job)['error']}", import_id=job.id)
    status_url = url_for("api.show_import", import_id=job.id)
    return jsonify({**import_json(job), "status_url": status_url}), 202, {"Location": status_url}


def _wait_seconds() -> float:
    limit = current_app.config["IMPORT_WAIT_SECONDS"]
    raw = request.args.get("wait")
    if raw is None:
        return limit
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value <= limit:
        raise InvalidInput.one(f"must be a number of seconds from 0 to {limit:g}", field="wait")
    return value


@bp.get("/imports/<int:import_id>")
@requires(*ADMINS, api=True)
def show_import(import_id: int):
    """An import's status and progress; when it failed on its input, the problems by line."""
    with reading(get_session()) as db:  # polled while the import writes: no write lock for a read
        return jsonify(import_json(imports.get_import(db, import_id)))


@bp.get("/projects/<int:project_id>/imports")
@requires(*ADMINS, api=True)
def list_project_imports(project_id: int):
    """A project's imports, newest first."""
    limit, offset = pagination()
    with reading(get_session()) as db:
        projects.get_project(db, project_id)
        items, total = imports.list_imports(db, project_id, limit=limit, offset=offset)
        return jsonify({"imports": [import_json(j) for j in items], "total": total, "limit": limit, "offset": offset})


@bp.post("/projects/<int:project_id>/snapshots")
@requires(*ADMINS, api=True)
def make_snapshot(project_id: int):
    """Freeze the current labels as a numbered snapshot."""
    snapshot = freeze_snapshot(projects.get_project(get_session(), project_id))
    return jsonify({"snapshot": snapshot.number, "labels": snapshot.n_labels}), 201


@bp.get("/projects/<int:project_id>/export")
@requires(*ADMINS, api=True)
def export_labels(project_id: int):
    """Stream the label set as JSONL, CSV or Parquet."""
    return export_response(project_id, request.args)
