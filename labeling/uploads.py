"""An import's stored file after the import has failed on its input: kept a while, so the import
page can map its columns again without the file being uploaded again, then discarded.

A kept upload is handed to the new import (its pieces change owner in one statement, nothing is
copied); one that nobody maps again is discarded with the abandoned uploads.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import IO

from sqlalchemy import delete, exists, select, update
from sqlalchemy.orm import Session

from labeling.db import reading
from labeling.errors import InvalidInput
from labeling.formats import FORMATS
from labeling.models import ImportJob, ImportUpload

KEPT_FOR = timedelta(hours=6)  # a failed import's file, for mapping it again


def copy_upload(session: Session, job_id: int, out: IO[bytes]) -> None:
    """The upload into a local file (Parquet needs to seek), a few pieces per read."""
    seq = 0
    while True:
        with reading(session):
            pieces = session.execute(select(ImportUpload.seq, ImportUpload.data).where(
                ImportUpload.import_id == job_id, ImportUpload.seq >= seq).order_by(ImportUpload.seq).limit(16)).all()
        if not pieces:
            break
        for piece_seq, data in pieces:
            out.write(data)
            seq = piece_seq + 1
    out.flush()


def is_kept(session: Session, job: ImportJob) -> bool:
    """True when ``job`` (a file's import) failed and its file is still there to be mapped again."""
    return job.status == "failed" and job.format in FORMATS and bool(session.scalar(select(exists().where(ImportUpload.import_id == job.id))))


def take_upload(session: Session, job: ImportJob, failed: ImportJob) -> None:
    """Give the new ``job`` the file ``failed`` kept, and queue it (InvalidInput naming ``file``
    when it is gone: discarded, or already taken by another import)."""
    if failed.project_id != job.project_id or failed.status != "failed":
        raise InvalidInput.one("that import's file cannot be imported again; choose the file again", field="file")
    moved = session.execute(update(ImportUpload).where(ImportUpload.import_id == failed.id)
                            .values(import_id=job.id).execution_options(synchronize_session=False)).rowcount
    if not moved:
        raise InvalidInput.one("the file is no longer kept; choose it again", field="file")
    job.status, job.bytes_total = "queued", failed.bytes_total
    session.commit()


def discard_kept_uploads(session: Session, *, now: datetime) -> int:
    """Files of imports that failed over ``KEPT_FOR`` ago and were not mapped again; how many."""
    with reading(session):
        ids = list(session.scalars(select(ImportJob.id).where(
            ImportJob.status == "failed", ImportJob.finished_at < now - KEPT_FOR,
            exists().where(ImportUpload.import_id == ImportJob.id))))
    for job_id in ids:  # one job at a time: short write transactions
        session.execute(delete(ImportUpload).where(ImportUpload.import_id == job_id))
        session.commit()
    return len(ids)
