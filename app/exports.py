"""Label-set versions for both surfaces (the API and the export page): freezing a snapshot and
streaming an export, each audited the same way whoever asks."""

from __future__ import annotations

import re
from typing import Mapping

from flask import Response, g, stream_with_context

from app.db import get_session, new_session
from labeling import audit, export, projects
from labeling.db import read_in_own_transaction, utcnow
from labeling.errors import InvalidInput
from labeling.models import Project, Snapshot
from labeling.snapshots import create_snapshot, get_snapshot

MEDIA_TYPES = {"jsonl": "application/x-ndjson", "csv": "text/csv; charset=utf-8", "parquet": "application/vnd.apache.parquet"}
TRUE = ("1", "true", "yes", "on")


def snapshot_from_text(text: str) -> int | None:
    """A snapshot number given as text (ASCII digits, within a 32-bit integer), or None."""
    if not re.fullmatch(r"[0-9]{1,10}", text) or not 1 <= int(text) <= 2**31 - 1:
        return None
    return int(text)


def freeze_snapshot(project: Project) -> Snapshot:
    """Freeze the current labels as the next numbered snapshot, audited, committed."""
    db = get_session()
    snapshot = create_snapshot(db, project, now=utcnow())
    audit.record(db, g.user, "snapshot.created", project_id=project.id, target=snapshot.number, now=utcnow(),
                 details={"labels": snapshot.n_labels})
    db.commit()
    return snapshot


def export_response(project_id: int, args: Mapping[str, str]) -> Response:
    """The label set as a streamed JSONL, CSV or Parquet attachment, from the query arguments
    ``format``, ``annotations``, ``snapshot``, ``include_unlabeled`` and ``escape_formulas``;
    InvalidInput naming the argument before anything is streamed."""
    fmt = args.get("format", "jsonl")
    annotations = args.get("annotations", "gold")
    export.check_export_args(fmt, annotations)
    include_unlabeled = args.get("include_unlabeled", "false").lower() in TRUE
    escape_formulas = args.get("escape_formulas", "false").lower() in TRUE
    db = get_session()
    project = projects.get_project(db, project_id)
    snapshot_number = None
    snapshot_arg = args.get("snapshot")
    if snapshot_arg is not None:
        if (number := snapshot_from_text(snapshot_arg)) is None:
            raise InvalidInput.one("must be a snapshot number", field="snapshot")
        snapshot_number = get_snapshot(db, project, number).number
    project_id, name = project.id, project.name
    audit.record(db, g.user, "export.downloaded", project_id=project_id, target=name, now=utcnow(), details={
        "format": fmt, "annotations": annotations, "snapshot": snapshot_number})
    db.commit()

    @stream_with_context
    def generate():
        # Its own session on a read-only (deferred) transaction: a long export holds no write lock.
        session = new_session()
        try:
            read_in_own_transaction(session)
            project = projects.get_project(session, project_id)
            snapshot = get_snapshot(session, project, snapshot_number) if snapshot_number else None
            rows, columns = export.rows_and_columns(session, project, annotations=annotations, snapshot=snapshot,
                                                    include_unlabeled=include_unlabeled)
            yield from export.encode(rows, fmt, columns, escape_formulas=escape_formulas)
        finally:
            session.close()

    filename = f"{name.replace(' ', '_')}-{annotations}{f'-snapshot{snapshot_number}' if snapshot_number else ''}.{fmt}"
    # ASCII only: a header carries bytes, and gunicorn refuses a name in another script.
    safe = "".join(c for c in filename if (c.isascii() and c.isalnum()) or c in "._-") or f"export.{fmt}"
    return Response(generate(), content_type=MEDIA_TYPES[fmt],
                    headers={"Content-Disposition": f'attachment; filename="{safe}"'})
