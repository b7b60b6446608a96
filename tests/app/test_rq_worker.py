"""RQ on the real Redis: a worker killed with SIGKILL mid-run leaves nothing corrupt, and the
run is taken over and completed by the next worker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from sqlalchemy import func, select

from active_learning.models import load_model
from labeling import projects, users
from labeling.db import utcnow
from labeling.examples import import_examples, json_rows
from labeling.models import Example, ModelVersion, Project, RetrainRun
from tests.conftest import REDIS_URL, auth

pytestmark = pytest.mark.slow


@pytest.fixture
def redis_url():
    if not REDIS_URL:
        pytest.skip("Redis not configured (set LABELING_TEST_REDIS_URL)")
    from redis import Redis

    Redis.from_url(REDIS_URL).flushdb()
    yield REDIS_URL
    Redis.from_url(REDIS_URL).flushdb()


def start_worker(env, log=None):
    hitl = os.path.join(os.path.dirname(sys.executable), "hitl")
    return subprocess.Popen([hitl, "worker"], env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=log or subprocess.DEVNULL)


def kill_worker(process):
    """SIGKILL the worker and its work horse (RQ starts the horse in a session of its own)."""
    children = subprocess.run(["pgrep", "-P", str(process.pid)], capture_output=True, text=True).stdout.split()
    for pid in children:
        try:
            os.killpg(int(pid), signal.SIGKILL)
        except ProcessLookupError:
            pass
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def wait_for(check, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_worker_killed_mid_run_leaves_nothing_corrupt_and_the_run_completes(app_factory, db_url, redis_url, tmp_path):
    env = {**os.environ, "LABELING_DATABASE_URL": db_url, "LABELING_REDIS_URL": redis_url,
           "LABELING_RUN_HEARTBEAT_SECONDS": "0.5", "LABELING_INSTANCE_PATH": str(tmp_path / "instance"),
           "LABELING_SECRET_KEY": "t", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    app = app_factory(JOBS="rq", REDIS_URL=redis_url, RUN_HEARTBEAT_SECONDS=0.5)
    maker = app.extensions["hitl_sessionmaker"]
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40_000, 20)).astype(np.float32)
    y = np.where(X[:, 0] + X[:, 1] > 0, "a", "b")
    with maker() as s:
        project = projects.create_project(s, "big", ["a", "b"], {"retrain_threshold": 100000}, now=utcnow())
        import_examples(s, project, json_rows([
            {"external_id": str(i), "features": X[i].tolist(), **({"label": str(y[i])} if i < 2000 else {})}
            for i in range(len(X))]), now=utcnow(), random_state=0)
        admin = users.create_user(s, "admin", "admin", password=None, now=utcnow())
        token = users.create_token(s, admin, now=utcnow())
        s.commit()
        project_id = project.id
    client = app.test_client()

    def run_status(run_id):
        with maker() as s:
            return s.scalar(select(RetrainRun.status).where(RetrainRun.id == run_id))

    def scored_by(version):
        with maker() as s:
            return s.scalar(select(func.count()).where(Example.scored_by_version == version))

    first = start_worker(env)
    try:
        run_id = client.post(f"/api/v1/projects/{project_id}/retrain", headers=auth(token)).json["run_id"]
        wait_for(lambda: run_status(run_id) == "running", 60, "the run to start")
        # Kill it mid-way through re-scoring: the new champion is stored, the pool half scored.
        wait_for(lambda: scored_by(1) > 0, 60, "re-scoring to begin")
        kill_worker(first)
    finally:
        if first.poll() is None:
            kill_worker(first)
    assert run_status(run_id) == "running"  # left behind by the dead worker
    assert 0 < scored_by(1) < 38_000
    with maker() as s:  # whatever was written is whole: every stored model loads
        for model in s.scalars(select(ModelVersion)):
            load_model(model.artifact, model.artifact_sha256)

    log = open(tmp_path / "second-worker.log", "w+")
    second = start_worker(env, log)
    try:
        wait_for(lambda: run_status(run_id) in ("succeeded", "failed"), 120, "the run to be taken over")
    finally:
        kill_worker(second)
    log.seek(0)
    print(log.read()[-5000:])  # shown by pytest if an assertion below fails
    with maker() as s:
        run = s.get(RetrainRun, run_id)
        assert run.status == "succeeded", run.error
        assert run.attempts >= 2
        champion = s.get(ModelVersion, s.scalar(select(Project.champion_id).where(Project.id == project_id)))
        model = load_model(champion.artifact, champion.artifact_sha256)["serve"]
        assert model.score(X[30000:31000], y[30000:31000]) > 0.9
        assert s.scalar(select(func.count()).where(ModelVersion.status == "champion")) == 1
        unscored = s.scalar(select(func.count()).where(
            Example.needs_labels, Example.scored_by_version != champion.version))
        assert unscored == 0


def test_healthz_reports_the_rq_worker(app_factory, db_url, redis_url, tmp_path):
    client = app_factory(JOBS="rq", REDIS_URL=redis_url).test_client()
    response = client.get("/healthz")
    assert response.status_code == 503 and "no worker listens" in response.json["worker"]
    assert response.json["database"] == "ok"
    env = {**os.environ, "LABELING_DATABASE_URL": db_url, "LABELING_REDIS_URL": redis_url,
           "LABELING_INSTANCE_PATH": str(tmp_path / "instance"), "LABELING_SECRET_KEY": "t"}
    worker = start_worker(env)
    try:
        wait_for(lambda: client.get("/healthz").status_code == 200, 60, "the worker to register")
        assert client.get("/healthz").json == {"status": "ok", "database": "ok", "worker": "ok"}
    finally:
        kill_worker(worker)


def test_healthz_fails_when_redis_is_unreachable(app_factory):
    client = app_factory(JOBS="rq", REDIS_URL="redis://127.0.0.1:9/0").test_client()
    response = client.get("/healthz")
    assert response.status_code == 503 and response.json["worker"] == "error: Redis: ConnectionError"


def test_with_redis_down_import_and_retrain_answer_and_the_run_stays_queued(app_factory, make_user):
    from labeling.models import RetrainRun

    app = app_factory(JOBS="rq", REDIS_URL="redis://127.0.0.1:9/0")
    client = app.test_client()
    _, token = make_user("boss", "admin")
    headers = {"Authorization": f"Bearer {token}"}
    project_id = client.post("/api/v1/projects", headers=headers, json={"name": "p", "labels": ["a", "b"]}).json["id"]
    rows = [{"external_id": str(i), "text": f"t {i}", "label": "ab"[i % 2]} for i in range(12)]
    response = client.post(f"/api/v1/projects/{project_id}/examples?wait=0.5", headers=headers, json={"examples": rows})
    assert response.status_code == 202 and response.json["status"] == "queued"  # stored; a worker imports it later
    from labeling.models import ImportJob

    with app.extensions["hitl_sessionmaker"]() as session:
        assert session.get(ImportJob, response.json["id"]).status == "queued"
    response = client.post(f"/api/v1/projects/{project_id}/retrain", headers=headers)
    assert response.status_code == 202 and response.json["status"] == "queued"
    with app.extensions["hitl_sessionmaker"]() as session:
        run = session.get(RetrainRun, response.json["run_id"])
        assert run.status == "queued"  # picked up by a worker's maintenance pass once Redis is back
