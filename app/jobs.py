"""Job runners: where retrain runs execute. The RetrainRun row is the record of truth.

- ``ThreadRunner`` (the embedded default): a daemon thread in this process.
- ``RQRunner`` (``LABELING_REDIS_URL`` set): RQ jobs on Redis, run by ``hitl worker``.

Both call ``labeling.training.execute_run``, which claims the run (queued -> running) with a
compare-and-set, so a run dispatched twice executes once.
"""

from __future__ import annotations

import logging
import threading
from typing import Protocol

from flask import Flask

log = logging.getLogger(__name__)


class JobRunner(Protocol):
    def dispatch(self, run_id: int, *, wait: bool = False) -> None: ...


def execute_run_in_app(app: Flask, run_id: int) -> None:
    from labeling.training import execute_run

    with app.app_context():
        try:
            execute_run(app.extensions["hitl_sessionmaker"], run_id, threads=app.config["THREADS"])
        except Exception:  # execute_run records failures on the run row; never die silently
            log.exception("retrain run %s failed", run_id)


class ThreadRunner:
    def __init__(self, app: Flask) -> None:
        self.app = app
        self._lock = threading.Lock()

    def dispatch(self, run_id: int, *, wait: bool = False) -> None:
        thread = threading.Thread(target=self._run, args=(run_id,), name=f"retrain-{run_id}", daemon=True)
        thread.start()
        if wait:
            thread.join()

    def _run(self, run_id: int) -> None:
        # One run at a time per process keeps a small machine responsive while it trains.
        with self._lock:
            execute_run_in_app(self.app, run_id)


class RQRunner:
    def __init__(self, app: Flask, redis_url: str) -> None:
        from redis import Redis
        from rq import Queue

        self.app = app
        self.queue = Queue("hitl", connection=Redis.from_url(redis_url))

    def dispatch(self, run_id: int, *, wait: bool = False) -> None:
        from rq import Retry

        self.queue.enqueue("app.jobs.rq_execute_run", run_id, job_id=f"retrain-{run_id}",
                           retry=Retry(max=3, interval=[5, 30, 120]), job_timeout=3600)


def rq_execute_run(run_id: int) -> None:
    """The RQ job: build the app from the environment, then execute the run."""
    from app import create_app

    execute_run_in_app(create_app(), run_id)


class InlineRunner:
    """Execute the run at once, in the caller (scripts, the CLI, deterministic tests)."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def dispatch(self, run_id: int, *, wait: bool = False) -> None:
        execute_run_in_app(self.app, run_id)


RUNNERS = ("auto", "thread", "rq", "inline")


def init_jobs(app: Flask) -> None:
    kind = app.config["JOBS"]
    if kind not in RUNNERS:
        raise ValueError(f"LABELING_JOBS must be one of {', '.join(RUNNERS)}, got {kind!r}")
    redis_url = app.config["REDIS_URL"]
    if kind == "auto":
        kind = "rq" if redis_url else "thread"
    if kind == "rq" and not redis_url:
        raise ValueError("LABELING_JOBS=rq needs LABELING_REDIS_URL")
    app.extensions["hitl_jobs"] = {"thread": ThreadRunner, "inline": InlineRunner}[kind](app) if kind != "rq" \
        else RQRunner(app, redis_url)
