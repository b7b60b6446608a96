"""Imports as background jobs: progress, all or nothing, short transactions, resuming after a crash."""

import io
import json
import time
from datetime import timedelta

import pytest
from sqlalchemy import event, func, select

from labeling import bulk_writer, imports, sqlite_lock, uploads
from labeling.db import sqlite_lock_path, utcnow
from labeling.models import Example, ImportJob, ImportUpload, Label, Project
from tests.conftest import auth


def jsonl(rows) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in rows)


def queue_import(app, project_id: int, data: bytes, fmt: str = "jsonl", **options) -> int:
    """An import queued as the API queues one, not yet executed."""
    with app.extensions["hitl_sessionmaker"]() as s:
        job = imports.start_import(s, s.get(Project, project_id), fmt=fmt, now=utcnow(), **options)
        imports.store_upload(s, job, io.BytesIO(data))
        return job.id


def rows_of(n: int, start: int = 0, label=None):
    return [{"external_id": f"r{i}", "text": f"row {i}", **({"label": label} if label else {})}
            for i in range(start, start + n)]


def test_an_import_reports_progress_through_both_phases(app, make_project, session, monkeypatch):
    monkeypatch.setattr(imports, "PROGRESS_SECONDS", 0.0)  # report on every row, to see the phases
    project_id = make_project(n=0)
    job_id = queue_import(app, project_id, jsonl(rows_of(5000)))
    seen = []
    status = imports.execute_import(app.extensions["hitl_sessionmaker"], job_id,
                                    on_progress=lambda job: seen.append((job.phase, imports.progress(job))))
    assert status == "succeeded"
    phases = [phase for phase, _ in seen]
    assert "validating" in phases and "publishing" in phases
    assert phases.index("publishing") > max(i for i, p in enumerate(phases) if p == "validating")
    values = [value for _, value in seen]
    assert values == sorted(values) and values[-1] == 1.0 and 0 < values[0] <= 0.5
    job = session.get(ImportJob, job_id)
    assert (job.imported, job.duplicates, job.rows_published) == (5000, 0, 5000)
    assert session.scalar(select(func.count()).select_from(ImportUpload)) == 0  # the upload is gone
    assert session.scalar(select(Project.n_examples).where(Project.id == project_id)) == 5000


def test_a_bad_row_at_the_end_fails_the_import_with_nothing_written(app, make_project, session):
    project_id = make_project(n=0)
    data = jsonl(rows_of(4999) + [{"external_id": "x", "text": "t", "label": "maybe"}])
    job_id = queue_import(app, project_id, data)
    assert imports.execute_import(app.extensions["hitl_sessionmaker"], job_id) == "failed"
    job = session.get(ImportJob, job_id)
    assert job.n_problems == 1 and job.problems[0]["line"] == 5000 and job.problems[0]["field"] == "label"
    assert job.rows_published == 0 and job.phase is None
    assert session.scalar(select(func.count()).select_from(Example).where(Example.project_id == project_id)) == 0
    assert job.problem_groups == [{"field": "label", "message": job.problems[0]["message"], "lines": [5000], "count": 1}]
    # The file is kept a while, to be mapped again without uploading it again; then discarded.
    assert uploads.is_kept(session, job)
    assert imports.discard_abandoned_uploads(session, now=utcnow()) == 0
    assert imports.discard_abandoned_uploads(session, now=utcnow() + uploads.KEPT_FOR + timedelta(minutes=1)) == 1
    assert session.scalar(select(func.count()).select_from(ImportUpload)) == 0
    assert not uploads.is_kept(session, job) and session.get(ImportJob, job_id).status == "failed"


def test_an_upload_that_ends_while_the_maintenance_looks_is_not_discarded(app, make_project):
    """The look for abandoned uploads is read-only; an upload that is queued between that look and
    the delete (a real write from another session, right after the look) keeps its
    job and its file: it was acknowledged."""
    project_id = make_project(n=0)
    factory = app.extensions["hitl_sessionmaker"]
    long_ago = utcnow() - imports.ABANDONED_UPLOAD - timedelta(minutes=1)
    with factory() as s:
        jobs = [imports.start_import(s, s.get(Project, project_id), fmt="jsonl", now=long_ago) for _ in range(2)]
        s.add_all([ImportUpload(import_id=job.id, seq=0, data=jsonl(rows_of(1))) for job in jobs])
        s.commit()
        finishing, abandoned = (job.id for job in jobs)

    statements = []

    def finish_the_upload_after_the_look(orm_execute_state):
        statements.append(orm_execute_state.statement)
        if len(statements) == 2:  # the look ran; the next statement is about to
            with factory() as other:
                other.get(ImportJob, finishing).status = "queued"
                other.commit()

    with factory() as s:
        event.listen(s, "do_orm_execute", finish_the_upload_after_the_look)
        assert imports.discard_abandoned_uploads(s, now=utcnow()) == 1
    with factory() as s:
        assert s.get(ImportJob, finishing).status == "queued" and s.get(ImportJob, abandoned) is None
        assert s.scalars(select(ImportUpload.import_id)).all() == [finishing]


def test_annotators_write_between_the_chunks_of_an_import(app, client, make_project, make_user, session):
    """Each chunk is its own transaction: a label submitted while an import publishes is written
    at once (on SQLite a held write transaction would make this same-thread write fail)."""
    project_id = make_project(n=3)
    _, token = make_user("ann", "annotator")
    served = client.get(f"/api/v1/projects/{project_id}/next", headers=auth(token)).json["example"]
    job_id = queue_import(app, project_id, jsonl(rows_of(6000)))
    answers = []

    def label_meanwhile(job):
        if job.phase == "publishing" and 0 < job.rows_published < 6000 and not answers:
            answers.append(client.post(f"/api/v1/projects/{project_id}/labels", headers=auth(token),
                                       json={"example_id": served["id"], "label": "pos"}).status_code)

    assert imports.execute_import(app.extensions["hitl_sessionmaker"], job_id, on_progress=label_meanwhile) == "succeeded"
    assert answers == [201]
    assert session.scalar(select(func.count()).select_from(Example).where(Example.project_id == project_id)) == 6003


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # SQLite's file lock
def test_while_annotators_meet_its_lock_an_import_rests_after_each_chunk_and_writes_shorter_ones(
        app, make_project, session, monkeypatch):
    """A writer of another process that waited for the lock marks it contended
    (labeling/sqlite_lock.py); the import then aims its transactions at the shorter target and
    rests after each chunk as long as the chunk took."""
    project_id = make_project(n=0)
    job_id = queue_import(app, project_id, jsonl(rows_of(2000)))
    factory = app.extensions["hitl_sessionmaker"]
    with factory() as s:
        assert imports.publish_seconds(s) == imports.PUBLISH_SECONDS["sqlite"]  # alone
        mark = sqlite_lock_path(s.get_bind().engine) + sqlite_lock.CONTENDED
        open(mark, "a").close()  # what a writer of another process does when it has to wait
        assert imports.publish_seconds(s) == imports.CONTENDED_PUBLISH_SECONDS < imports.PUBLISH_SECONDS["sqlite"]
    worked = []
    real_after_commit = bulk_writer.after_commit

    def after_commit(s, **kwargs):  # the real one, its arguments noted
        worked.append(kwargs.get("worked", 0.0))
        real_after_commit(s, **kwargs)

    monkeypatch.setattr(bulk_writer, "after_commit", after_commit)
    assert imports.execute_import(factory, job_id) == "succeeded"
    assert worked and all(w > 0 for w in worked)  # each chunk's time, for its rest
    assert session.scalar(select(Project.n_examples).where(Project.id == project_id)) == 2000


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # SQLite's text index (FTS5)
def test_the_text_index_merges_in_steps_of_its_own_while_an_import_publishes(app, make_project, session, monkeypatch):
    """On SQLite the text index's automatic merging is paused while the import publishes, its
    segments merged in transactions of their own; the setting it had comes back, and the index
    finds every row."""
    from sqlalchemy import text

    from labeling import text_index

    monkeypatch.setattr(imports, "PUBLISH_ROWS", (20, 20, 20))  # many segments, so merges
    setting = text("SELECT v FROM examples_fts_config WHERE k = 'automerge'")
    session.execute(text("INSERT INTO examples_fts(examples_fts, rank) VALUES ('automerge', 8)"))
    session.commit()
    project_id = make_project(n=0)
    job_id = queue_import(app, project_id, jsonl(rows_of(3000)))
    during, merged = [], []
    real_steps = text_index.merge_steps
    monkeypatch.setattr(text_index, "merge_steps", lambda s: merged.append(real_steps(s)) or merged[-1])

    def look(job):
        if job.phase == "publishing" and not during:
            with app.extensions["hitl_sessionmaker"]() as s:
                during.append(s.execute(setting).scalar())

    assert imports.execute_import(app.extensions["hitl_sessionmaker"], job_id, on_progress=look) == "succeeded"
    session.rollback()  # a fresh snapshot
    assert during == [0] and session.execute(setting).scalar() == 8 and sum(merged) > 0
    session.execute(text("INSERT INTO examples_fts(examples_fts) VALUES ('integrity-check')"))
    found = session.execute(text("SELECT count(*) FROM examples_fts WHERE examples_fts MATCH '\"row 12\"'")).scalar()
    assert found == sum(1 for i in range(3000) if "row 12" in f"row {i}") == 111
    session.rollback()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # SQLite's text index (FTS5)
def test_merging_left_paused_by_a_killed_import_is_restored_when_the_app_starts(app, app_factory, make_project, session):
    """An import killed (``kill -9``) while it publishes leaves the text index's automatic merging
    paused: a process opening the database restores FTS5's default, but not while an import is
    alive (running, its heartbeat fresh), whose own pause that may be."""
    from sqlalchemy import text, update

    setting = text("SELECT v FROM examples_fts_config WHERE k = 'automerge'")
    project_id = make_project(n=0)
    job_id = queue_import(app, project_id, jsonl(rows_of(10)))
    with app.extensions["hitl_sessionmaker"]() as s:  # as the killed import left things
        assert imports.claim_import(s, job_id, now=utcnow())
        s.execute(text("INSERT INTO examples_fts(examples_fts, rank) VALUES ('automerge', 0)"))
        s.commit()
    app_factory()  # another web worker starts beside an import that is alive
    session.rollback()  # a fresh snapshot
    assert session.execute(setting).scalar() == 0
    session.rollback()
    with app.extensions["hitl_sessionmaker"]() as s:  # the import's heartbeat stopped: it is dead
        s.execute(update(ImportJob).where(ImportJob.id == job_id).values(heartbeat_at=utcnow() - timedelta(minutes=5)))
        s.commit()
    app_factory()
    session.rollback()
    assert session.execute(setting).scalar() == 4  # FTS5's default
    session.rollback()


def test_an_import_cut_off_while_publishing_resumes_where_it_stopped(app, make_project, session):
    project_id = make_project(n=0)
    data = jsonl(rows_of(7000, label="pos"))
    job_id = queue_import(app, project_id, data)
    factory = app.extensions["hitl_sessionmaker"]

    cut_at = []

    def die_midway(job):
        if job.phase == "publishing" and job.rows_published >= 4000:
            cut_at.append(job.rows_published)
            raise KeyboardInterrupt  # as a killed process: nothing more is written, no cleanup runs

    with pytest.raises(KeyboardInterrupt):
        imports.execute_import(factory, job_id, on_progress=die_midway, heartbeat_seconds=0.05)
    session.rollback()  # a fresh snapshot
    assert session.get(ImportJob, job_id).status == "running"
    assert 4000 <= session.scalar(select(func.count()).select_from(Example)) == cut_at[0] < 7000
    # Another worker may not take it while its heartbeat is fresh, and takes it over once stale.
    assert imports.execute_import(factory, job_id) is None
    later = utcnow() + timedelta(minutes=5)
    with factory() as s:
        assert imports.lost_imports(s, now=later, queued_for=timedelta(seconds=60)) == [job_id]
    assert imports.execute_import(factory, job_id, clock=lambda: later) == "succeeded"
    session.rollback()  # a fresh snapshot
    job = session.get(ImportJob, job_id)
    assert (job.imported, job.labels, job.duplicates, job.attempts) == (7000, 7000, 0, 2)
    ids = session.scalars(select(Example.external_id).where(Example.project_id == project_id)).all()
    assert len(ids) == len(set(ids)) == 7000
    assert session.scalar(select(func.count()).select_from(Label)) == 7000
    assert session.scalar(select(Project.n_examples).where(Project.id == project_id)) == 7000


def test_the_api_answers_202_for_a_long_import_and_the_status_endpoint_follows_it(app_factory, make_project):
    """With the thread runner (a real child process), ``?wait=0`` answers at once; the status
    endpoint shows the import until it has succeeded, then the counts and the first model's run."""
    app = app_factory(JOBS="thread")
    client = app.test_client()
    from labeling import users

    with app.extensions["hitl_sessionmaker"]() as s:
        token = users.create_token(s, users.create_user(s, "boss", "admin", password=None, now=utcnow()), now=utcnow())
        s.commit()
    project_id = client.post("/api/v1/projects", json={"name": "bg", "labels": ["pos", "neg"]},
                             headers=auth(token)).json["id"]
    rows = rows_of(3000, label="pos") + rows_of(3000, start=3000, label="neg")
    response = client.post(f"/api/v1/projects/{project_id}/examples?wait=0", headers=auth(token),
                           data={"file": (io.BytesIO(jsonl(rows)), "rows.jsonl")}, content_type="multipart/form-data")
    assert response.status_code == 202, response.json
    assert response.json["status"] == "queued" and response.headers["Location"] == response.json["status_url"]
    assert response.json["filename"] == "rows.jsonl" and response.json["bytes_total"] == len(jsonl(rows))
    deadline = time.monotonic() + 120
    while (status := client.get(response.json["status_url"], headers=auth(token)).json)["status"] not in ("succeeded", "failed"):
        assert time.monotonic() < deadline, status
        time.sleep(0.2)
    assert status["status"] == "succeeded", status
    assert (status["imported"], status["labels"], status["progress"]) == (6000, 6000, 1.0)
    assert status["run_id"] is not None  # the first model, queued with the import's success
    listed = client.get(f"/api/v1/projects/{project_id}/imports", headers=auth(token)).json
    assert listed["total"] == 1 and listed["imports"][0]["id"] == status["id"]


def test_wait_must_be_a_number_of_seconds_within_the_limit(client, admin_token, make_project):
    project_id = make_project(n=0)
    for bad in ("-1", "abc", "9999", "nan"):
        response = client.post(f"/api/v1/projects/{project_id}/examples?wait={bad}", headers=auth(admin_token),
                               json={"examples": rows_of(1)})
        assert response.status_code == 422 and response.json["errors"][0]["field"] == "wait", bad


def test_abandoned_uploads_are_discarded_and_lost_imports_restarted(app, make_project, session):
    from app.jobs import maintain_once

    project_id = make_project(n=0)
    factory = app.extensions["hitl_sessionmaker"]
    with factory() as s:
        cut_off = imports.start_import(s, s.get(Project, project_id), fmt="jsonl", now=utcnow() - timedelta(days=1))
        s.commit()
        cut_off_id = cut_off.id
    queued_id = queue_import(app, project_id, jsonl(rows_of(2)))
    with factory() as s:
        s.get(ImportJob, queued_id).created_at = utcnow() - timedelta(minutes=5)  # nobody picked it up
        s.commit()
    restarted = []
    maintain_once(app, lambda run_id: None, restarted.append)
    assert restarted == [queued_id]
    session.rollback()  # a fresh snapshot
    assert session.get(ImportJob, cut_off_id) is None


def test_imported_labels_join_the_holdout_at_its_rate_as_plain_booleans(client, admin_token, make_project, session):
    project_id = make_project(n=0, settings={"holdout_fraction": 0.5})
    response = client.post(f"/api/v1/projects/{project_id}/examples", headers=auth(admin_token),
                           json={"examples": rows_of(400, label="pos")})
    assert response.status_code == 201, response.json
    values = session.scalars(select(Example.in_holdout).where(Example.project_id == project_id)).all()
    assert set(map(type, values)) == {bool} and 140 <= sum(values) <= 260
    assert session.scalar(select(func.count()).select_from(Example).where(
        Example.project_id == project_id, Example.in_holdout.is_(True))) == sum(values)
