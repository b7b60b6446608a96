"""What the import page previews and maps: a file staged on this machine (between the upload and
the click on Import) or the file a failed import kept; its first rows; the mapping in the form."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any, Mapping

from flask import current_app
from sqlalchemy.orm import Session

from labeling import uploads
from labeling.errors import InvalidInput, NotFound
from labeling.formats import peek_columns
from labeling.imports import get_import
from labeling.models import ImportJob, Project

EXPIRED = "the upload expired; choose the file again"


def upload_dir() -> Path:
    folder = Path(current_app.instance_path) / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def sweep_staged() -> None:
    """Staged files never imported (the page left at the preview) go after ``uploads.KEPT_FOR``."""
    cutoff = time.time() - uploads.KEPT_FOR.total_seconds()
    for path in upload_dir().iterdir():
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
        except OSError:  # another process swept it first
            continue


def staged(token: str) -> tuple[Path, str]:
    """The staged upload named by ``token`` (letters, digits, - and _ only: no path tricks)."""
    if not token or not all(c.isalnum() or c in "-_" for c in token):
        raise InvalidInput.one(EXPIRED, field="file")
    matches = list(upload_dir().glob(f"{token}.*"))
    if not matches:
        raise InvalidInput.one(EXPIRED, field="file")
    return matches[0], matches[0].suffix.lstrip(".")


def kept_import(session: Session, project: Project, import_id: Any) -> ImportJob:
    """A failed import of ``project`` whose file is still kept (InvalidInput naming ``file`` if not)."""
    try:
        job = get_import(session, int(import_id))
    except (TypeError, ValueError, NotFound):
        raise InvalidInput.one("no such import; choose the file again", field="file") from None
    if job.project_id != project.id or not uploads.is_kept(session, job):
        raise InvalidInput.one("the file is no longer kept; choose it again", field="file")
    return job


def peek_staged(token: str) -> tuple[list[str], list[dict[str, Any]]]:
    path, fmt = staged(token)
    with path.open("rb") as stream:
        return peek_columns(stream, fmt)


def peek_kept(session: Session, job: ImportJob) -> tuple[list[str], list[dict[str, Any]]]:
    """Columns and first rows of a kept file, read from a local copy (Parquet needs to seek)."""
    with tempfile.TemporaryFile() as copy:
        uploads.copy_upload(session, job.id, copy)
        copy.seek(0)
        return peek_columns(copy, job.format)


def chosen_mapping(form: Mapping[str, str]) -> tuple[dict[str, str], str]:
    """The form's ``{column: field or ""}`` (every column shown, "" for one left unmapped) and
    what to do with the columns no field takes."""
    rename = {key[4:]: value for key, value in form.items() if key.startswith("map:")}
    return rename, form.get("unknown_columns", "meta")

