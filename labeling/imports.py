"""Background imports, their whole lifecycle: the upload is stored in the database (any worker
can read it), the job is claimed by one worker and kept alive by a heartbeat, every row is
validated before any is written (a problem anywhere fails the import with nothing imported), and
then the rows are published in short transactions, each committing its chunk together with
``rows_published``, so annotators' writes wait for one chunk at most and a job cut short resumes
where it stopped.

uploading -> queued -> running (validating, then publishing) -> succeeded | failed
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from datetime import datetime, timedelta
from typing import IO, Any, Callable, Iterator

import numpy as np
from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.orm import Session

from labeling import bulk_writer, text_index
from labeling.db import checkpoint_wal, reading, utcnow
from labeling.errors import InvalidInput, NotFound, Problem
from labeling.examples import ImportWriter, RowValidator, check_source, count_new_examples, json_rows
from labeling.formats import FORMATS, mapped_rows, read_rows
from labeling.heartbeat import HEARTBEAT_SECONDS, beating, stale_after
from labeling.models import ImportJob, ImportUpload, Project
from labeling.projects import check_writable, queue_seed
from labeling.runs import failure_text, request_after_import
from labeling.uploads import copy_upload, discard_kept_uploads
from labeling.webhooks import Links

log = logging.getLogger(__name__)

JSON_BODY = "json"  # the format of an API import sent as a JSON body {"examples": [...]}
UPLOAD_PIECE = 1024 * 1024
PIECES_PER_COMMIT = 1  # a short write each: on SQLite an annotator waits for the whole of it
# A publishing transaction is sized to hold the database this long: on SQLite it holds the one
# write lock, and an annotator's write waits for the rest of it (a 250-row chunk held it 15 ms on a
# million-row pool: every random index key dirties its own page), so while annotators meet the
# lock the target halves (with the rest of labeling/bulk_writer.py, an annotator's p99 beside a
# 1M-row import fell from 12.0 to 8.8 ms: docs/benchmarks.md, session 19). The size adapts to the
# machine and the pool, within the bounds.
PUBLISH_SECONDS = {"sqlite": 0.006, "postgresql": 0.1}
CONTENDED_PUBLISH_SECONDS = 0.003  # SQLite, while annotators meet the import's lock
PUBLISH_ROWS = (20, 2000, 100)  # least, most, first
CHECKPOINT_SECONDS = 0.25  # the import copies the log it wrote, not the next annotator's request
PROGRESS_SECONDS = 1.0  # how often validation writes its progress
MAX_ATTEMPTS = 3  # a job whose publishing failed this often (the database away, say) is failed
ABANDONED_UPLOAD = timedelta(hours=6)  # an upload unfinished this long was cut off: discarded
FINISHED = ("succeeded", "failed")


def start_import(session: Session, project: Project, *, fmt: str, now: datetime, source: str = "import",
                 update_duplicates: bool = False, rename: dict[str, str] | None = None,
                 unknown_columns: str | None = None, filename: str | None = None,
                 created_by: int | None = None) -> ImportJob:
    """A new job, ``uploading`` until ``store_upload`` has its file (Conflict when the project is
    archived). ``rename`` and ``unknown_columns``: the mapping of labeling/mapping.py."""
    check_writable(project)
    check_source(source)
    if fmt not in (*FORMATS, JSON_BODY):
        raise InvalidInput.one(f"must be one of {', '.join(FORMATS)}", field="format")
    job = ImportJob(project_id=project.id, created_by=created_by, status="uploading", format=fmt,
                    filename=(filename or "")[:255] or None, source=source, update_duplicates=update_duplicates,
                    rename=rename or None, unknown_columns=unknown_columns, created_at=now)
    session.add(job)
    session.flush()
    return job


def store_upload(session: Session, job: ImportJob, stream: IO[bytes]) -> None:
    """Copy ``stream`` into the job's upload, in pieces, committing every few (short write
    transactions); then queue the job. On any error the job and its pieces are removed."""
    job_id, seq, total = job.id, 0, 0
    try:
        while piece := stream.read(UPLOAD_PIECE):
            session.execute(insert(ImportUpload), {"import_id": job_id, "seq": seq, "data": piece})
            seq, total = seq + 1, total + len(piece)
            if seq % PIECES_PER_COMMIT == 0:
                session.commit()
        session.execute(update(ImportJob).where(ImportJob.id == job_id).values(status="queued", bytes_total=total))
        session.commit()
    except BaseException:
        session.rollback()
        discard(session, job_id)
        raise


def discard(session: Session, job_id: int) -> None:
    session.execute(delete(ImportUpload).where(ImportUpload.import_id == job_id))
    session.execute(delete(ImportJob).where(ImportJob.id == job_id))
    session.commit()


def get_import(session: Session, job_id: int) -> ImportJob:
    job = session.get(ImportJob, job_id)
    if job is None:
        raise NotFound(f"no import with id {job_id}")
    return job


def list_imports(session: Session, project_id: int, *, limit: int = 50, offset: int = 0) -> tuple[list[ImportJob], int]:
    where = (ImportJob.project_id == project_id, ImportJob.status != "uploading")
    jobs = list(session.scalars(select(ImportJob).where(*where).order_by(ImportJob.id.desc()).limit(limit).offset(offset)))
    return jobs, session.scalar(select(func.count()).select_from(ImportJob).where(*where)) or 0


def progress(job: ImportJob) -> float:
    """0 to 1: validation is the first half, publishing the second."""
    if job.status == "succeeded":
        return 1.0
    if job.phase == "publishing":
        return 0.5 + 0.5 * job.rows_published / max(job.rows_valid, 1)
    return 0.5 * job.bytes_read / max(job.bytes_total, 1)


def invalid_input(job: ImportJob) -> InvalidInput:
    """The problems of an import that failed on its input, as the error a synchronous import raised."""
    problems = [Problem(p["message"], p.get("field"), p.get("line")) for p in job.problems or []]
    return InvalidInput(f"{job.n_problems} problem(s) in the input; nothing was imported", problems, job.n_problems)


def wait_for(session: Session, job_id: int, *, seconds: float, poll: float = 0.2) -> ImportJob:
    """The job once finished, or as it stands after ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        session.rollback()
        with reading(session):  # a fresh snapshot each time, and no transaction held between polls
            job = get_import(session, job_id)
            session.refresh(job)
        if job.status in FINISHED or time.monotonic() >= deadline:
            return job
        time.sleep(poll)


# --- executing a job ----------------------------------------------------------------------

def claim_import(session: Session, job_id: int, *, now: datetime, heartbeat_seconds: float = HEARTBEAT_SECONDS) -> bool:
    """queued -> running (or take over a running job whose heartbeat stopped); True if claimed."""
    return bool(session.execute(
        update(ImportJob)
        .where(ImportJob.id == job_id, or_(
            ImportJob.status == "queued",
            (ImportJob.status == "running") & (ImportJob.heartbeat_at < now - stale_after(heartbeat_seconds)),
        ))
        .values(status="running", started_at=func.coalesce(ImportJob.started_at, now), heartbeat_at=now,
                attempts=ImportJob.attempts + 1)
        .execution_options(synchronize_session=False)
    ).rowcount)


def lost_imports(session: Session, *, now: datetime, queued_for: timedelta,
                 heartbeat_seconds: float = HEARTBEAT_SECONDS) -> list[int]:
    """Jobs to dispatch again: running with a stopped heartbeat, or queued and never claimed."""
    return list(session.scalars(select(ImportJob.id).where(or_(
        (ImportJob.status == "running") & (ImportJob.heartbeat_at < now - stale_after(heartbeat_seconds)),
        (ImportJob.status == "queued") & (ImportJob.created_at < now - queued_for),
    )).order_by(ImportJob.id)))


def discard_abandoned_uploads(session: Session, *, now: datetime) -> int:
    """Uploads whose request was cut off (the process killed while it stored the file), and the
    files failed imports kept that nobody mapped again."""
    with reading(session):
        ids = list(session.scalars(select(ImportJob.id).where(
            ImportJob.status == "uploading", ImportJob.created_at < now - ABANDONED_UPLOAD)))
    discarded = 0
    for job_id in ids:
        # Looked at read-only: its upload may have ended since. Ask again inside the write
        # transaction (the row locked on PostgreSQL, the database on SQLite), so a job queued
        # meanwhile, and already acknowledged, is never deleted.
        if session.scalar(select(ImportJob.id).where(ImportJob.id == job_id, ImportJob.status == "uploading")
                          .with_for_update()) is None:
            session.rollback()
            continue
        discard(session, job_id)
        discarded += 1
    return discarded + discard_kept_uploads(session, now=now)


def execute_import(session_factory: Callable[[], Session], job_id: int, *, clock: Callable[[], datetime] = utcnow,
                   links: Links | None = None, heartbeat_seconds: float = HEARTBEAT_SECONDS,
                   on_progress: Callable[[ImportJob], None] | None = None) -> str | None:
    """Run a queued import to its end; returns its final status (``queued`` again when publishing
    was interrupted by an error and will be retried), or None if another worker has it.

    Reads run in read-only transactions and ``job`` is never reloaded mid-way (the session keeps
    objects across commits): on SQLite any other transaction would hold the write lock."""
    with session_factory() as session:
        if not claim_import(session, job_id, now=clock(), heartbeat_seconds=heartbeat_seconds):
            session.rollback()
            return None
        session.commit()
    with beating(session_factory, ImportJob, job_id, clock=clock, seconds=heartbeat_seconds), \
            tempfile.TemporaryFile(prefix="hitl-import-") as spool, session_factory() as session:
        with reading(session):
            job = get_import(session, job_id)
            project = session.get(Project, job.project_id)
        try:
            copy_upload(session, job_id, spool)
            if job.phase != "publishing":
                if not _validate(session, job, project, spool, clock=clock, on_progress=on_progress):
                    return "failed"
            # The other connections leave the log to the import; the text index merges in steps.
            with bulk_writer.checkpointing_the_log(session), text_index.merged_in_steps(session) as merging:
                _publish(session, job, project, spool, clock=clock, on_progress=on_progress, merging=merging)
            _finish(session, job, project, clock=clock, links=links)
            if on_progress:
                on_progress(job)
            return "succeeded"
        except Exception as exc:
            log.exception("import %s failed", job_id)
            session.rollback()
            return _fail_or_retry(session, job_id, exc, now=clock())


def _rows(job: ImportJob, spool: IO[bytes]) -> tuple[IO[bytes], Iterator[Any]]:
    """A reader of the upload from its start, on a handle of its own (a CSV reader closes the
    handle it was given), and its rows."""
    handle = open(os.dup(spool.fileno()), "rb")
    handle.seek(0)
    if job.format == JSON_BODY:
        rows = json_rows(json.load(handle).get("examples"))
        return handle, mapped_rows(rows, {}, job.unknown_columns) if job.unknown_columns else rows
    return handle, read_rows(handle, job.format, rename=job.rename, unknown=job.unknown_columns)


def _validator(session: Session, project: Project) -> RowValidator:
    with reading(session):
        return RowValidator(session, project)


def _validate(session: Session, job: ImportJob, project: Project, spool: IO[bytes], *,
              clock: Callable[[], datetime], on_progress: Callable[[ImportJob], None] | None) -> bool:
    """Read every row; on problems fail the job with them (nothing written) and return False."""
    job.phase, job.bytes_read, job.rows_valid = "validating", 0, 0
    session.commit()
    validator = _validator(session, project)
    last = time.monotonic()
    handle, rows = _rows(job, spool)
    for _ in validator.clean_rows(rows):
        if time.monotonic() - last >= PROGRESS_SECONDS:
            job.bytes_read, job.rows_valid = min(handle.tell(), job.bytes_total), validator.valid
            session.commit()
            if on_progress:
                on_progress(job)
            last = time.monotonic()
    job.bytes_read, job.rows_valid = job.bytes_total, validator.valid
    if validator.total_problems:
        job.status, job.finished_at, job.phase = "failed", clock(), None
        job.problems = [p.as_dict() for p in validator.problems]
        job.n_problems = validator.total_problems
        job.problem_groups = validator.groups.as_list()
        if job.format == JSON_BODY:  # a file is kept a while, to be mapped again (labeling/uploads.py)
            session.execute(delete(ImportUpload).where(ImportUpload.import_id == job.id))
        session.commit()
        return False
    job.phase = "publishing"
    session.commit()
    return True


def _publish(session: Session, job: ImportJob, project: Project, spool: IO[bytes], *, clock: Callable[[], datetime],
             on_progress: Callable[[ImportJob], None] | None, merging: bool = False) -> None:
    """Write the rows after ``rows_published``, one chunk per transaction (and, ``merging``,
    the text index's merge steps after each)."""
    seed = queue_seed(project)
    # Seeded by where it starts, so a resumed job draws fresh keys and a replayed one the same.
    rng = np.random.default_rng(None if seed is None else [seed, job.id, job.rows_published])
    writer = ImportWriter(session, project, rng, now=clock(), source=job.source,
                          update_duplicates=job.update_duplicates)
    validator = _validator(session, project)
    least, most, size = PUBLISH_ROWS
    skip, chunk, checkpointed = job.rows_published, [], time.monotonic()
    _, rows = _rows(job, spool)
    for index, clean in enumerate(validator.clean_rows(rows)):
        if index < skip:
            continue
        chunk.append(clean)
        if len(chunk) >= size:
            held = _write_chunk(session, job, writer, chunk)
            if merging:
                text_index.merge_steps(session)
            # Halfway (geometrically) to the size that would have held the target time.
            size = int(min(most, max(least, size * (publish_seconds(session) / max(held, 1e-6)) ** 0.5)))
            chunk = []
            if time.monotonic() - checkpointed >= CHECKPOINT_SECONDS:
                checkpoint_wal(session)
                checkpointed = time.monotonic()
            if on_progress:
                on_progress(job)
    if validator.total_problems:  # the project changed since validation (a label removed, say)
        raise RuntimeError("rows that were valid no longer are: " + "; ".join(map(str, validator.problems[:3])))
    _write_chunk(session, job, writer, chunk)


def publish_seconds(session: Session) -> float:
    """How long a publishing transaction should hold the database now."""
    if bulk_writer.annotators_meet_its_lock(session):
        return CONTENDED_PUBLISH_SECONDS
    return PUBLISH_SECONDS.get(session.get_bind().dialect.name, 0.1)


def _write_chunk(session: Session, job: ImportJob, writer: ImportWriter, chunk: list[dict[str, Any]]) -> float:
    """One transaction: the chunk's rows, the project's count and the job's, committed together;
    returns how long it held the database."""
    if not chunk:
        return 0.0
    started = time.perf_counter()
    prepared = writer.prepare(chunk)  # before the transaction begins: it holds SQLite's write lock
    began = time.perf_counter()
    before = (writer.imported, writer.labels, writer.updated)
    writer.write_prepared(prepared)
    imported, labels, updated = (now - then for now, then in zip((writer.imported, writer.labels, writer.updated), before))
    count_new_examples(session, job.project_id, imported)
    job.rows_published += len(chunk)
    job.imported += imported
    job.duplicates += len(chunk) - imported
    job.labels += labels
    job.updated += updated
    session.commit()
    held = time.perf_counter() - began
    bulk_writer.after_commit(session, worked=time.perf_counter() - started)  # the annotators' turn
    return held


def _finish(session: Session, job: ImportJob, project: Project, *, clock: Callable[[], datetime],
            links: Links | None) -> None:
    """Succeeded: the retrain its labels call for (or the first model's) queued in the same commit."""
    job.run_id = request_after_import(session, project, labels=job.labels, now=clock(), links=links)
    job.status, job.phase, job.finished_at, job.error = "succeeded", None, clock(), None
    session.execute(delete(ImportUpload).where(ImportUpload.import_id == job.id))
    session.commit()


def _fail_or_retry(session: Session, job_id: int, exc: Exception, *, now: datetime) -> str:
    """Before publishing, fail: nothing was written. While publishing, queue the job again (it
    resumes after its last chunk) until ``MAX_ATTEMPTS``; then fail, saying how far it got."""
    job = session.get(ImportJob, job_id, populate_existing=True)
    if job is None:  # its project was deleted meanwhile
        session.rollback()
        return "failed"
    job.error = failure_text(exc)
    if job.phase == "publishing" and job.attempts < MAX_ATTEMPTS:
        job.status = "queued"
    else:
        job.status, job.finished_at = "failed", now
        if job.phase == "publishing":
            job.error = (f"stopped after publishing {job.rows_published} of {job.rows_valid} rows "
                         f"({job.attempts} attempts): " + job.error)
        session.execute(delete(ImportUpload).where(ImportUpload.import_id == job.id))
    session.commit()
    return job.status
