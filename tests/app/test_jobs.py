"""The maintenance pass of the job runners: runs nobody finished are dispatched again."""

from datetime import timedelta

from sqlalchemy import select

from app.jobs import maintain_once
from labeling.db import utcnow
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


def test_a_failing_pass_is_logged_and_does_not_raise(app, caplog):
    def broken_dispatch(run_id):
        raise AssertionError("never reached: there is no run to dispatch")

    app.extensions["hitl_sessionmaker"] = None  # the database is away
    maintain_once(app, broken_dispatch)
    assert any("maintenance pass failed" in r.getMessage() for r in caplog.records)


def test_the_thread_runner_executes_a_run_in_a_low_priority_child_process(app_factory):
    import os
    import time

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
    deadline = time.time() + 60
    while time.time() < deadline:
        runs = client.get(f"/api/v1/projects/{project['id']}/runs", headers=auth(token)).json["runs"]
        if runs and runs[0]["status"] in ("succeeded", "failed"):
            break
        time.sleep(0.2)
    assert runs[0]["status"] == "succeeded" and runs[0]["model_version"] == 1
    assert os.nice(0) < JOB_NICENESS  # the niceness went to the child, not to this process
