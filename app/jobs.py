"""Job runners: where retrain runs, imports and webhook deliveries execute. The database rows
(``RetrainRun``, ``ImportJob``, ``WebhookDelivery``) are the record of truth; a job only names a row.

- ``ThreadRunner`` (the embedded default): a thread in this process hands each run (and each
  import) to a long-lived child process at low CPU priority (a CPU-bound job in a web process's
  own thread would hold the GIL against the requests it serves), plus a maintenance thread that
  retries due webhooks and restarts runs and imports whose process died.
- ``RQRunner`` (``LABELING_REDIS_URL``): RQ jobs on Redis, executed by ``hitl worker``, which
  also runs the maintenance loop.
- ``InlineRunner``: at once, in the caller (scripts and deterministic tests).

Runs and imports are claimed with a compare-and-set (queued -> running), so one dispatched twice
executes once; deliveries likewise.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import uuid
from datetime import timedelta
from typing import Any

from flask import Flask

from labeling.db import reading, utcnow

log = logging.getLogger(__name__)
MAINTENANCE_SECONDS = 5.0
LOST_DISPATCH_AFTER = timedelta(seconds=60)  # a queued run nobody claimed for this long is dispatched again
JOB_NICENESS = 10  # retrain children yield the CPU to the web processes serving annotators
# Jobs and commands read and write whole pools: the requests' statement timeout is not theirs.
JOB_SETTINGS = {"DB_STATEMENT_TIMEOUT_SECONDS": 3600.0}


def execute_run_in_app(app: Flask, run_id: int) -> None:
    from app.api.links import api_links
    from labeling.runs import execute_run

    with app.app_context():
        try:
            execute_run(app.extensions["hitl_sessionmaker"], run_id, threads=app.config["THREADS"],
                        links=api_links(app), heartbeat_seconds=app.config["RUN_HEARTBEAT_SECONDS"],
                        mlflow_tracking_uri=app.config["MLFLOW_TRACKING_URI"])
        except Exception:  # execute_run records failures on the run row; never die silently
            log.exception("retrain run %s failed", run_id)


def execute_import_in_app(app: Flask, import_id: int, *, on_progress=None) -> int | None:  # type: ignore[no-untyped-def]
    """Execute an import; the retrain run it queued, if any, for the caller to dispatch."""
    from app.api.links import api_links
    from labeling.imports import execute_import

    with app.app_context():
        try:
            execute_import(app.extensions["hitl_sessionmaker"], import_id, links=api_links(app),
                           heartbeat_seconds=app.config["RUN_HEARTBEAT_SECONDS"], on_progress=on_progress)
        except Exception:  # execute_import records failures on the job row; never die silently
            log.exception("import %s failed", import_id)
        return finished_import_run(app, import_id)


def finished_import_run(app: Flask, import_id: int) -> int | None:
    from labeling.models import ImportJob

    with app.extensions["hitl_sessionmaker"]() as session:
        job = session.get(ImportJob, import_id)
        return job.run_id if job is not None and job.status == "succeeded" else None


class RunProcess:
    """A long-lived child process (spawned on first use, at low CPU priority) that executes the
    runs (or, with ``kind="imports"``, the imports) sent to it, one at a time. Started once
    rather than per run: importing the service and its ML stack took longer than a small
    project's whole run. It leaves after ``IDLE_SECONDS``
    without a run (each web worker has one, and an idle one holds hundreds of MB) and is started
    again when needed, after ``RUNS_PER_PROCESS`` runs (memory a long-lived process accumulates),
    or when it died.
    """

    RUNS_PER_PROCESS = 50
    IDLE_SECONDS = 300.0

    def __init__(self, app: Flask, kind: str = "runs") -> None:
        self.app, self.kind = app, kind
        self._process: multiprocessing.process.BaseProcess | None = None
        self._conn = None
        self._runs = 0

    def execute(self, run_id: int) -> int:
        """Execute a run in the child; 0 when it finished, else the child's exit code (-1 unknown)."""
        for attempt in range(2):
            if self._process is None or not self._process.is_alive() or self._runs >= self.RUNS_PER_PROCESS:
                self._start()
            self._runs += 1
            try:
                self._conn.send(run_id)
                self._conn.recv()
                return 0
            except (EOFError, OSError):
                self._process.join(5)
                code = self._process.exitcode
                self._process = None
                # Exit code 0: it left, idle, just as the run was sent (unread): give it to a new one.
                if code != 0 or attempt:
                    return code if code is not None else -1
        return -1

    def _start(self) -> None:
        from app.settings import SETTINGS

        self.stop()
        settings = {s.name: self.app.config[s.name] for s in SETTINGS}
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        self._process = context.Process(target=_run_process_main, name=f"hitl-{self.kind}", daemon=True,
                                        args=(settings, self.app.instance_path, child, self.IDLE_SECONDS, self.kind))
        self._process.start()
        child.close()
        self._conn, self._runs = parent, 0

    def stop(self) -> None:
        if self._conn is not None:
            self._conn.close()  # the child sees EOF and exits
        if self._process is not None:
            self._process.join(10)
            if self._process.is_alive():
                self._process.kill()
        self._process = self._conn = None


def _run_process_main(settings: dict, instance_path: str, conn, idle_seconds: float,  # type: ignore[no-untyped-def]
                      kind: str = "runs") -> None:
    os.nice(JOB_NICENESS)
    from app import create_app

    # A job writes only what it can write again (a run cut short is re-run, an import resumed):
    # on SQLite its commits skip the fsync (WAL with synchronous=NORMAL survives a crash of the process, and the
    # annotators' FULL commits sync the log for everyone), so it holds the write lock less long.
    app = create_app({**settings, **JOB_SETTINGS, "JOBS": "inline", "SQLITE_SYNCHRONOUS": "NORMAL"},
                     instance_path=instance_path)
    while True:
        try:
            if not conn.poll(idle_seconds):
                return  # idle: free the memory; the web process starts another when needed
            run_id = conn.recv()
        except EOFError:  # the web process is gone or replaced this child
            return
        (execute_import_in_app if kind == "imports" else execute_run_in_app)(app, run_id)
        conn.send(run_id)


def deliver_webhooks_in_app(app: Flask) -> int:
    from labeling.webhooks import deliver_due

    try:
        return deliver_due(app.extensions["hitl_sessionmaker"], clock=utcnow)
    except Exception:
        log.exception("webhook delivery failed")
        return 0


def runs_to_restart(app: Flask) -> list[int]:
    """Runs whose heartbeat stopped, and queued runs nobody picked up."""
    from labeling.runs import lost_runs

    with app.extensions["hitl_sessionmaker"]() as session, reading(session):
        return lost_runs(session, now=utcnow(), queued_for=LOST_DISPATCH_AFTER,
                         heartbeat_seconds=app.config["RUN_HEARTBEAT_SECONDS"])


def imports_to_restart(app: Flask) -> list[int]:
    """Imports whose heartbeat stopped, and queued imports nobody picked up (abandoned uploads
    are discarded on the way)."""
    from labeling.imports import discard_abandoned_uploads, lost_imports

    with app.extensions["hitl_sessionmaker"]() as session:
        discard_abandoned_uploads(session, now=utcnow())
        with reading(session):
            return lost_imports(session, now=utcnow(), queued_for=LOST_DISPATCH_AFTER,
                                heartbeat_seconds=app.config["RUN_HEARTBEAT_SECONDS"])


def maintain_once(app: Flask, dispatch, dispatch_import=None) -> None:  # type: ignore[no-untyped-def]
    """One pass of the maintenance loop: due webhooks, then runs and imports to restart. A
    failure (the database away for a moment) is logged and the loop goes on."""
    try:
        deliver_webhooks_in_app(app)
        for run_id in runs_to_restart(app):
            dispatch(run_id)
        if dispatch_import is not None:
            for import_id in imports_to_restart(app):
                dispatch_import(import_id)
    except Exception:
        log.exception("maintenance pass failed; retrying in %s s", MAINTENANCE_SECONDS)


class ThreadRunner:
    def __init__(self, app: Flask) -> None:
        self.app = app
        self._run_lock = threading.Lock()
        self._run_process = RunProcess(app)
        # Imports have a process of their own: an import does not wait for a retrain, nor it for one.
        self._import_lock = threading.Lock()
        self._import_process = RunProcess(app, kind="imports")
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._maintenance: threading.Thread | None = None

    def dispatch(self, run_id: int, *, wait: bool = False) -> None:
        thread = threading.Thread(target=self._run, args=(run_id,), name=f"retrain-{run_id}", daemon=True)
        thread.start()
        if wait:
            thread.join()

    def dispatch_import(self, import_id: int, *, wait: bool = False) -> None:
        thread = threading.Thread(target=self._import, args=(import_id,), name=f"import-{import_id}", daemon=True)
        thread.start()
        if wait:
            thread.join()

    def _import(self, import_id: int) -> None:
        with self._import_lock:
            code = self._import_process.execute(import_id)
        if code:
            log.warning("import %s: its process ended with exit code %s; an import cut short is "
                        "resumed once its heartbeat stops", import_id, code)
        try:
            run_id = finished_import_run(self.app, import_id)
        except Exception:
            log.exception("import %s: could not read its run", import_id)
            return
        if run_id is not None:
            self.dispatch(run_id)

    def _run(self, run_id: int) -> None:
        # One run at a time per process keeps a small machine responsive while it trains.
        with self._run_lock:
            code = self._run_process.execute(run_id)
        if code:  # None: this process is exiting and took the child with it
            log.warning("retrain run %s: its process ended with exit code %s; a run cut short is "
                        "taken over once its heartbeat stops", run_id, code)
        self.notify()  # its model.trained webhook

    def notify(self) -> None:
        """Deliver webhooks now (after a commit that wrote some)."""
        self.ensure_maintenance()
        self._wake.set()

    def ensure_maintenance(self) -> None:
        if self._stopped.is_set():
            return
        if self._maintenance is None or not self._maintenance.is_alive():
            self._maintenance = threading.Thread(target=self._maintain, name="hitl-maintenance", daemon=True)
            self._maintenance.start()

    def health(self) -> str | None:
        """None when runs can execute; else what is wrong (for /healthz)."""
        return None  # runs start in a child of this very process

    def stop(self) -> None:
        """End the maintenance loop and the run process (an app that is done, e.g. in tests: its
        loop would otherwise go on polling a database that may be gone)."""
        self._stopped.set()
        self._wake.set()
        if self._maintenance is not None:
            self._maintenance.join(MAINTENANCE_SECONDS)
        with self._run_lock:
            self._run_process.stop()
        with self._import_lock:
            self._import_process.stop()

    def _maintain(self) -> None:
        while not self._stopped.is_set():
            self._wake.wait(MAINTENANCE_SECONDS)
            self._wake.clear()
            if not self._stopped.is_set():
                maintain_once(self.app, self.dispatch, self.dispatch_import)


class InlineRunner:
    def __init__(self, app: Flask) -> None:
        self.app = app

    def dispatch(self, run_id: int, *, wait: bool = False) -> None:
        execute_run_in_app(self.app, run_id)
        deliver_webhooks_in_app(self.app)

    def dispatch_import(self, import_id: int, *, wait: bool = False) -> None:
        run_id = execute_import_in_app(self.app, import_id)
        if run_id is not None:
            self.dispatch(run_id)

    def notify(self) -> None:
        deliver_webhooks_in_app(self.app)

    def health(self) -> str | None:
        return None

    def stop(self) -> None:
        pass


class RQRunner:
    QUEUE = "hitl"

    def __init__(self, app: Flask, redis_url: str) -> None:
        from redis import Redis
        from rq import Queue

        self.app = app
        # Bounded waits: a Redis that hangs must not hang the request that queued a run.
        self.redis = Redis.from_url(redis_url, socket_connect_timeout=1, socket_timeout=2)
        self.queue = Queue(self.QUEUE, connection=self.redis)

    def health(self) -> str | None:
        """Redis answers and at least one ``hitl worker`` listens on the queue."""
        from rq import Worker

        try:
            self.redis.ping()
            workers = Worker.count(queue=self.queue)
        except Exception as exc:  # Redis away: nobody will execute runs
            return f"error: Redis: {type(exc).__name__}"
        return None if workers else f"error: no worker listens on the RQ queue {self.QUEUE!r} (start `hitl worker`)"

    def dispatch(self, run_id: int, *, wait: bool = False) -> None:
        from redis.exceptions import RedisError
        from rq import Retry

        try:
            self.queue.enqueue_call("app.jobs.rq_execute_run", args=(run_id,), timeout=3600,
                                    job_id=f"retrain-{run_id}-{uuid.uuid4().hex[:8]}",
                                    retry=Retry(max=3, interval=[10, 60, 300]))
        except RedisError as exc:  # the run row is the truth: a worker's maintenance dispatches it later
            log.warning("run %s stays queued: Redis is unreachable (%s)", run_id, type(exc).__name__)

    def dispatch_import(self, import_id: int, *, wait: bool = False) -> None:
        from redis.exceptions import RedisError

        try:
            self.queue.enqueue_call("app.jobs.rq_execute_import", args=(import_id,), timeout=6 * 3600,
                                    job_id=f"import-{import_id}-{uuid.uuid4().hex[:8]}")
        except RedisError as exc:  # the job row is the truth: a worker's maintenance dispatches it later
            log.warning("import %s stays queued: Redis is unreachable (%s)", import_id, type(exc).__name__)

    def notify(self) -> None:
        from redis.exceptions import RedisError

        try:
            self.queue.enqueue_call("app.jobs.rq_deliver_webhooks", timeout=600)
        except RedisError as exc:  # deliveries are rows too; a worker's maintenance sends them later
            log.warning("webhooks wait: Redis is unreachable (%s)", type(exc).__name__)

    def stop(self) -> None:
        self.redis.close()


def queued(run_id: int | None) -> None:
    """After a commit that queued a run (and maybe wrote webhooks): start both on their way."""
    from flask import current_app

    if run_id is None:
        return
    runner = current_app.extensions["hitl_jobs"]
    runner.notify()
    runner.dispatch(run_id)


def import_queued(import_id: int) -> None:
    """After the commit that queued an import: start it."""
    from flask import current_app

    current_app.extensions["hitl_jobs"].dispatch_import(import_id)


def notify() -> None:
    """After a commit that wrote webhook deliveries: send them."""
    from flask import current_app

    current_app.extensions["hitl_jobs"].notify()


def _worker_app() -> Flask:
    from app import create_app

    return create_app(JOB_SETTINGS)


def rq_execute_run(run_id: int) -> None:
    """RQ job: execute a retrain run (the worker process builds the app from the environment)."""
    app = _worker_app()
    execute_run_in_app(app, run_id)
    deliver_webhooks_in_app(app)


def rq_execute_import(import_id: int) -> None:
    """RQ job: execute an import, then queue the retrain run it asked for."""
    app = _worker_app()
    run_id = execute_import_in_app(app, import_id)
    if run_id is not None:
        app.extensions["hitl_jobs"].dispatch(run_id)


def rq_deliver_webhooks() -> None:
    deliver_webhooks_in_app(_worker_app())


def run_worker(app: Flask, *, burst: bool = False) -> None:
    """``hitl worker``: an RQ worker, with the maintenance loop (webhook retries, lost runs) beside it."""
    from rq import Worker

    runner = app.extensions["hitl_jobs"]
    if not isinstance(runner, RQRunner):
        raise RuntimeError("hitl worker needs LABELING_REDIS_URL (and LABELING_JOBS=auto or rq)")
    stop = threading.Event()
    # Held while the maintenance thread uses the database, and across the fork of each work horse:
    # a horse forked while that thread was inside a SQLite transaction inherited the transaction's
    # in-process lock state and waited for it forever (SQLite: no connection may cross a fork).
    forking = threading.Lock()

    class ForkSafeWorker(Worker):
        def fork_work_horse(self, job: Any, queue: Any) -> None:
            with forking:
                super().fork_work_horse(job, queue)

    def maintain() -> None:
        while not stop.wait(MAINTENANCE_SECONDS):
            with forking:
                maintain_once(app, runner.dispatch, runner.dispatch_import)

    thread = threading.Thread(target=maintain, name="hitl-maintenance", daemon=True)
    thread.start()
    try:
        # A short maintenance interval moves jobs of killed workers on quickly (STACK.md).
        ForkSafeWorker([runner.queue], connection=runner.redis, maintenance_interval=60).work(burst=burst)
    finally:
        stop.set()


RUNNERS = ("auto", "thread", "rq", "inline")


def init_jobs(app: Flask) -> None:
    kind = app.config["JOBS"]
    if kind not in RUNNERS:
        raise ValueError(f"LABELING_JOBS must be one of {', '.join(RUNNERS)}, got {kind!r}")
    redis_url = app.config["REDIS_URL"]
    if kind == "auto":
        kind = "rq" if redis_url else "thread"
    if kind == "rq":
        if not redis_url:
            raise ValueError("LABELING_JOBS=rq needs LABELING_REDIS_URL")
        app.extensions["hitl_jobs"] = RQRunner(app, redis_url)
    elif kind == "inline":
        app.extensions["hitl_jobs"] = InlineRunner(app)
    else:
        runner = app.extensions["hitl_jobs"] = ThreadRunner(app)
        # Web processes (not CLI commands) keep the maintenance loop going from their first
        # request, so a run whose process died is taken over even if nothing new is queued.
        app.before_request(runner.ensure_maintenance)
