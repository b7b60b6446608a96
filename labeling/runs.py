"""Retrain runs, their whole lifecycle: requested (at most one queued or running per project),
claimed by one worker, kept alive by a heartbeat, taken over when that stops, executed (the
training itself is ``labeling.training``), announced by webhook, and read."""

from __future__ import annotations

import logging
import traceback
from datetime import datetime, timedelta
from typing import Any, Callable

from sqlalchemy import bindparam, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from threadpoolctl import threadpool_limits

from labeling.db import utcnow
from labeling.heartbeat import HEARTBEAT_SECONDS, beat_once, beating, stale_after
from labeling.errors import NotFound
from labeling.models import Label, ModelVersion, Project, RetrainRun
from labeling.projects import check_writable, config
from labeling.webhooks import Links, enqueue_event

log = logging.getLogger(__name__)

ACTIVE = ("queued", "running")
STRATEGY_TRIGGER = "strategy"  # a run asked for by a change of query strategy: it always re-scores


def active_run(session: Session, project_id: int) -> RetrainRun | None:
    return session.scalar(
        select(RetrainRun).where(RetrainRun.project_id == project_id, RetrainRun.status.in_(ACTIVE))
    )


# Counted on every submit, so built once: an index range over the labels since the mark, cut at
# the threshold (all the check needs). Uncut, the labels given while a run is active, or under a
# high threshold, added up: 60,000 of them cost each submit 8.6 ms on SQLite (docs/benchmarks.md).
_NEW_LABELS_SINCE_MARK = select(func.count()).select_from(
    select(Label.__table__.c.id).where(
        Label.__table__.c.project_id == bindparam("project_id"), Label.__table__.c.id > bindparam("mark"),
        Label.__table__.c.value.is_not(None),
    ).limit(bindparam("most")).subquery()
)


def new_labels_since_mark(session: Session, project: Project, *, most: int | None = None) -> int:
    """The labels given since the last retrain request, counted up to ``most`` (None: all)."""
    return session.connection().execute(
        _NEW_LABELS_SINCE_MARK,
        {"project_id": project.id, "mark": project.retrain_label_mark, "most": 2 ** 62 if most is None else most},
    ).scalar() or 0


def maybe_request_retrain(session: Session, project: Project, *, now: datetime, links: Links | None = None) -> int | None:
    """Request a run when the labels since the last request reach the threshold (``>=``).

    Returns the id of the run that was created, or None. While a run is queued or running the
    request is folded into it; labels given after it froze its snapshot count towards the next one
    (those given before are the run's: ``training._read`` moves the mark past them).
    """
    threshold = config(project).retrain_threshold
    new_labels = new_labels_since_mark(session, project, most=threshold)
    if new_labels < threshold:
        return None
    if active_run(session, project.id) is not None:
        return None
    new_labels = new_labels_since_mark(session, project)  # the webhook says how many, once per request
    run, created = request_retrain(session, project, trigger="threshold", now=now)
    if not created:
        return None
    _announce_threshold(session, project, run, new_labels=new_labels, now=now, links=links)
    return run.id


def _announce_threshold(session: Session, project: Project, run: RetrainRun, *, new_labels: int, now: datetime,
                        links: Links | None) -> None:
    """Freeze the label set the run will train on, and tell outside pipelines where to get it."""
    from labeling.snapshots import create_snapshot
    snapshot = create_snapshot(session, project, now=now, reason="threshold")
    run.snapshot_id = snapshot.id
    data = {
        "project_id": project.id, "project": project.name, "new_labels": new_labels,
        "threshold": config(project).retrain_threshold, "labels": snapshot.n_labels,
        "snapshot": snapshot.number, "run_id": run.id,
    }
    if links is not None:
        data["export_url"] = links.export(project.id, snapshot.number)
    enqueue_event(session, project, "labels.threshold_reached", data, now=now)
    session.flush()


def request_after_import(session: Session, project: Project, *, labels: int, now: datetime,
                         links: Links | None = None) -> int | None:
    """After an import: a run when imported labels reach the threshold, or, before any model, a
    run that trains if it can and otherwise orders the new pool for a diverse cold start."""
    if labels and (run_id := maybe_request_retrain(session, project, now=now, links=links)) is not None:
        return run_id
    if project.champion_id is None:
        run, created = request_retrain(session, project, trigger="import", now=now)
        return run.id if created else None
    return None


def request_after_settings(session: Session, project: Project, changed: Any, *, now: datetime) -> int | None:
    """After a settings change: a new query strategy re-orders the queue only once the pool is
    re-scored, so, when a model exists, request a run (trigger ``strategy``) that re-scores the
    pool with the new strategy whether or not its model is promoted. Returns the new run's id."""
    if "strategy" not in changed or project.champion_id is None or project.archived_at is not None:
        return None
    run, created = request_retrain(session, project, trigger=STRATEGY_TRIGGER, now=now)
    return run.id if created else None


def request_retrain(session: Session, project: Project, *, trigger: str, now: datetime) -> tuple[RetrainRun, bool]:
    """Return the queued or running run, or queue a new one; the bool says whether it is new
    (Conflict when the project is archived)."""
    check_writable(project)
    existing = active_run(session, project.id)
    if existing is not None:
        return existing, False
    mark = session.scalar(select(func.max(Label.id)).where(Label.project_id == project.id)) or 0
    run = RetrainRun(project_id=project.id, trigger=trigger, status="queued", created_at=now)
    try:
        with session.begin_nested():
            session.add(run)
            session.flush()
    except IntegrityError:
        # Another transaction queued one at the same moment (the unique partial index said no).
        existing = active_run(session, project.id)
        if existing is None:
            raise
        return existing, False
    project.retrain_label_mark = mark
    session.flush()
    return run, True


def get_run(session: Session, run_id: int) -> RetrainRun:
    run = session.get(RetrainRun, run_id)
    if run is None:
        raise NotFound(f"no run with id {run_id}")
    return run


def has_pending_webhooks(session: Session, project_id: int) -> bool:
    from labeling.models import WebhookDelivery

    return session.scalar(select(WebhookDelivery.id).where(
        WebhookDelivery.project_id == project_id, WebhookDelivery.status == "pending").limit(1)) is not None


def list_runs(session: Session, project_id: int, *, limit: int = 100, offset: int = 0) -> list[RetrainRun]:
    return list(session.scalars(
        select(RetrainRun).where(RetrainRun.project_id == project_id)
        .order_by(RetrainRun.id.desc()).limit(limit).offset(offset)
    ))


def model_version_of(session: Session, run: RetrainRun) -> int | None:
    """The version number of the model a run produced, if any."""
    if run.model_version_id is None:
        return None
    return session.scalar(select(ModelVersion.version).where(ModelVersion.id == run.model_version_id))


# --- executing a run ----------------------------------------------------------------------

def claim_run(session: Session, run_id: int, *, now: datetime, heartbeat_seconds: float = HEARTBEAT_SECONDS) -> bool:
    """queued -> running (or take over a running run whose heartbeat stopped); True if claimed."""
    claimed = session.execute(
        update(RetrainRun)
        .where(RetrainRun.id == run_id, or_(
            RetrainRun.status == "queued",
            (RetrainRun.status == "running") & (RetrainRun.heartbeat_at < now - stale_after(heartbeat_seconds)),
        ))
        .values(status="running", started_at=now, heartbeat_at=now, attempts=RetrainRun.attempts + 1, error=None)
        .execution_options(synchronize_session=False)
    ).rowcount
    return bool(claimed)


def stale_runs(session: Session, *, now: datetime, heartbeat_seconds: float = HEARTBEAT_SECONDS) -> list[int]:
    """Runs left ``running`` by a process that died (no heartbeat for ``STALE_BEATS`` beats)."""
    return list(session.scalars(select(RetrainRun.id).where(
        RetrainRun.status == "running", RetrainRun.heartbeat_at < now - stale_after(heartbeat_seconds))))


def lost_runs(session: Session, *, now: datetime, queued_for: timedelta,
              heartbeat_seconds: float = HEARTBEAT_SECONDS) -> list[int]:
    """Runs to dispatch again: running with a stopped heartbeat, or queued and never claimed."""
    return stale_runs(session, now=now, heartbeat_seconds=heartbeat_seconds) + list(session.scalars(select(RetrainRun.id).where(
        RetrainRun.status == "queued", RetrainRun.created_at < now - queued_for).order_by(RetrainRun.id)))


def execute_run(session_factory: Callable[[], Session], run_id: int, *, threads: int = 1,
                clock: Callable[[], datetime] = utcnow, random_state: int = 0, links: Links | None = None,
                heartbeat_seconds: float = HEARTBEAT_SECONDS, mlflow_tracking_uri: str = "") -> str | None:
    """Run a queued retrain run end to end; returns its final status, or None if not claimed.

    Safe to call twice: only the caller that claims the run executes it. With an MLflow tracking
    URI, the finished run is also logged there (after it is committed here).
    """
    with session_factory() as session:
        if not claim_run(session, run_id, now=clock(), heartbeat_seconds=heartbeat_seconds):
            session.rollback()
            return None
        session.commit()
    # Imported here: training brings the ML stack, which web workers only need if they run jobs.
    from labeling.training import train_and_promote

    def beat(session: Session) -> None:
        beat_once(session, RetrainRun, run_id, clock())
        session.commit()

    try:
        with beating(session_factory, RetrainRun, run_id, clock=clock, seconds=heartbeat_seconds), \
                threadpool_limits(limits=threads):
            result = train_and_promote(session_factory, run_id, clock=clock, random_state=random_state, heartbeat=beat)
    except Exception as exc:
        log.exception("retrain run %s failed", run_id)
        status, result = "failed", None
        error = failure_text(exc)
    else:
        status, error = "succeeded", None
    with session_factory() as session:
        run = session.get(RetrainRun, run_id)
        if run is None:  # its project was deleted meanwhile: nothing is left to record
            log.info("retrain run %s vanished with its project", run_id)
            return None
        run.status, run.finished_at, run.result, run.error = status, clock(), result, error
        if result is None or "model_version" in result:
            _announce_model(session, run, result, links=links, now=clock())
        session.commit()
    if mlflow_tracking_uri:
        _track(session_factory, run_id, mlflow_tracking_uri)
    return status


def _track(session_factory: Callable[[], Session], run_id: int, tracking_uri: str) -> None:
    from labeling.tracking import track_run

    with session_factory() as session:
        mlflow_run_id = track_run(session, run_id, tracking_uri)
        if mlflow_run_id is not None:
            run = session.get(RetrainRun, run_id)
            run.result = {**(run.result or {}), "mlflow_run_id": mlflow_run_id}
            session.commit()


def _announce_model(session: Session, run: RetrainRun, result: dict[str, Any] | None, *, links: Links | None,
                    now: datetime) -> None:
    project = session.get(Project, run.project_id)
    data: dict[str, Any] = {"project_id": project.id, "project": project.name, "run_id": run.id, "status": run.status}
    if result is not None:
        data.update(model_version=result["model_version"], promoted=result["promoted"], decision=result["decision"],
                    metrics=result["metrics"], champion_metrics=result["champion_metrics"],
                    n_labels=result["n_labels"], snapshot=result["snapshot"])
        if links is not None:
            data["models_url"] = links.models(project.id)
    else:
        data["error"] = (run.error or "").splitlines()[0] if run.error else None
    enqueue_event(session, project, "model.trained", data, now=now)


def failure_text(exc: BaseException) -> str:
    """What a failed job records: the error and the end of its traceback."""
    return f"{type(exc).__name__}: {exc}"[:2000] + "\n" + traceback.format_exc(limit=3)[-2000:]
