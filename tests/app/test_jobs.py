"""The maintenance pass of the job runners: runs nobody finished are dispatched again."""

import fcntl
import os
import threading
from datetime import timedelta

import pytest

from app.jobs import maintain_once
from labeling import sqlite_lock
from labeling.db import sqlite_lock_path, utcnow
from labeling.models import RetrainRun


def test_a_dead_run_and_a_forgotten_queued_run_are_dispatched_again(app, make_project, session, caplog):
    project_id = make_project(n=3)
    long_ago = utcnow() - timedelta(hours=1)
    dead = RetrainRun(project_id=project_id, trigger="manual", status="running", created_at=long_ago,
                      started_at=long_ago, heartbeat_at=long_ago, attempts=1)
    session.add(dead)
    session.commit()
    forgotten = RetrainRun(project_id=make_project(n=3), trigger="manual", status="queued", created_at=long_ago)
    fresh = RetrainRun(project_id=make_project(n=3), trigger="manual", status="queued", created_at=utcnow())
    session.add_all([forgotten, fresh])
    session.commit()
    dispatched = []

    maintain_once(app, dispatched.append)

    assert sorted(dispatched) == sorted([dead.id, forgotten.id])  # not the run queued a moment ago
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # SQLite's write lock
def test_a_pass_with_nothing_to_do_takes_no_write_lock(app, caplog):
    """Each web worker runs the pass every few seconds. On SQLite its reads must not queue on the
    write lock: there they waited behind an import's transactions, and the import took them for
    annotators meeting its lock and rested (labeling/bulk_writer.py)."""
    lock_path = sqlite_lock_path(app.extensions["hitl_engine"])
    holder = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(holder, fcntl.LOCK_EX)  # another process's bulk writer, in a transaction throughout
    done = threading.Event()

    def maintain() -> None:
        maintain_once(app, lambda run_id: None, lambda import_id: None)
        done.set()

    thread = threading.Thread(target=maintain, daemon=True)
    try:
        thread.start()
        assert done.wait(10), "the maintenance pass waited for the write lock"
    finally:
        fcntl.flock(holder, fcntl.LOCK_UN)
        os.close(holder)
        thread.join(10)
    assert not [r for r in caplog.records if r.levelname == "ERROR"]  # the pass ran, not failed fast
    assert not sqlite_lock.contended_within(lock_path, 60)


def test_a_failing_pass_is_logged_and_does_not_raise(app, caplog):
    def broken_dispatch(run_id):
        raise AssertionError("never reached: there is no run to dispatch")

    app.extensions["hitl_sessionmaker"] = None  # the database is away
    maintain_once(app, broken_dispatch)
    assert any("maintenance pass failed" in r.getMessage() for r in caplog.records)


def test_the_thread_runner_executes_runs_in_one_low_priority_child_process(app_factory):
    """Runs go to one long-lived child at low priority; a child that died or left idle is replaced."""
    import os
    import signal

    from app.jobs import JOB_NICENESS
    from tests.conftest import auth

    app = app_factory(JOBS="thread")
    client = app.test_client()
    with app.app_context():
        from labeling import users
        from app.db import get_session

        db = get_session()
        token = users.create_token(db, users.create_user(db, "boss", "admin", password=None, now=utcnow()), now=utcnow())
        db.commit()
    project = client.post("/api/v1/projects", json={"name": "threaded", "labels": ["a", "b"]}, headers=auth(token)).json
    rows = [{"external_id": str(i), "features": [float(i % 2), float(i)], "label": "ab"[i % 2]} for i in range(40)]
    assert client.post(f"/api/v1/projects/{project['id']}/examples", json={"examples": rows},
                       headers=auth(token)).status_code == 201
    runs = _wait_for_run(client, project["id"], token, version=1)
    assert runs[0]["status"] == "succeeded"
    assert os.nice(0) < JOB_NICENESS  # the niceness went to the child, not to this process
    child = app.extensions["hitl_jobs"]._run_process._process
    assert child.is_alive() and _niceness(child.pid) == JOB_NICENESS

    assert client.post(f"/api/v1/projects/{project['id']}/retrain", headers=auth(token)).status_code == 202
    assert _wait_for_run(client, project["id"], token, version=2)[0]["status"] == "succeeded"
    assert app.extensions["hitl_jobs"]._run_process._process.pid == child.pid  # started once

    os.kill(child.pid, signal.SIGKILL)
    child.join(10)
    runner = app.extensions["hitl_jobs"]._run_process
    runner.IDLE_SECONDS = 1.0  # the next child leaves after a second without work
    assert client.post(f"/api/v1/projects/{project['id']}/retrain", headers=auth(token)).status_code == 202
    assert _wait_for_run(client, project["id"], token, version=3)[0]["status"] == "succeeded"
    replacement = runner._process
    assert replacement.pid != child.pid
    replacement.join(30)
    assert replacement.exitcode == 0  # left on its own, idle
    assert client.post(f"/api/v1/projects/{project['id']}/retrain", headers=auth(token)).status_code == 202
    assert _wait_for_run(client, project["id"], token, version=4)[0]["status"] == "succeeded"
    last = runner._process
    jobs = app.extensions["hitl_jobs"]
    assert jobs._maintenance.is_alive()
    jobs.stop()  # an app that is done: no loop left polling its database, no child left
    assert not jobs._maintenance.is_alive() and not last.is_alive()
    jobs.ensure_maintenance()
    assert not jobs._maintenance.is_alive()


def _wait_for_run(client, project_id: int, token: str, *, version: int) -> list[dict]:
    import time

    from tests.conftest import auth

    deadline = time.time() + 90
    while time.time() < deadline:
        runs = client.get(f"/api/v1/projects/{project_id}/runs", headers=auth(token)).json["runs"]
        if runs and runs[0]["status"] in ("succeeded", "failed") and runs[0]["model_version"] == version:
            return runs
        time.sleep(0.2)
    raise AssertionError(f"no finished run with model version {version}: {runs}")


def _niceness(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as stat:
        return int(stat.read().rsplit(")", 1)[1].split()[16])
