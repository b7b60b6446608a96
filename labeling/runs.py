"""Retrain runs: requesting them (at most one queued or running per project) and reading them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from labeling.db import iso
from labeling.errors import NotFound
from labeling.models import Label, ModelVersion, Project, RetrainRun

ACTIVE = ("queued", "running")


def active_run(session: Session, project_id: int) -> RetrainRun | None:
    return session.scalar(
        select(RetrainRun).where(RetrainRun.project_id == project_id, RetrainRun.status.in_(ACTIVE))
    )


# Counted on every submit, so built once: an index range over the few labels since the mark.
_NEW_LABELS_SINCE_MARK = select(func.count()).where(
    Label.__table__.c.project_id == bindparam("project_id"), Label.__table__.c.id > bindparam("mark"),
    Label.__table__.c.value.is_not(None),
)


def new_labels_since_mark(session: Session, project: Project) -> int:
    return session.connection().execute(
        _NEW_LABELS_SINCE_MARK, {"project_id": project.id, "mark": project.retrain_label_mark}
    ).scalar() or 0


def maybe_request_retrain(session: Session, project: Project, *, now: datetime, public_url: str = "") -> int | None:
    """Request a run when the labels since the last request reach the threshold (``>=``).

    Returns the id of the run that was created, or None. While a run is queued or running the
    request is folded into it, and the labels keep counting towards the next one.
    """
    new_labels = new_labels_since_mark(session, project)
    if new_labels < project.settings["retrain_threshold"]:
        return None
    if active_run(session, project.id) is not None:
        return None
    run, created = request_retrain(session, project, trigger="threshold", now=now)
    if not created:
        return None
    _announce_threshold(session, project, run, new_labels=new_labels, now=now, public_url=public_url)
    return run.id


def _announce_threshold(session: Session, project: Project, run: RetrainRun, *, new_labels: int, now: datetime,
                        public_url: str) -> None:
    """Freeze the label set the run will train on, and tell outside pipelines where to get it."""
    from labeling.snapshots import create_snapshot
    from labeling.webhooks import enqueue_event

    snapshot = create_snapshot(session, project, now=now, reason="threshold")
    run.snapshot_id = snapshot.id
    export_path = f"/api/v1/projects/{project.id}/export?format=jsonl&snapshot={snapshot.number}"
    enqueue_event(session, project, "labels.threshold_reached", {
        "project_id": project.id, "project": project.name, "new_labels": new_labels,
        "threshold": project.settings["retrain_threshold"], "labels": snapshot.n_labels,
        "snapshot": snapshot.number, "run_id": run.id, "export_url": public_url.rstrip("/") + export_path,
    }, now=now)
    session.flush()


def request_after_import(session: Session, project: Project, *, labels: int, now: datetime,
                         public_url: str = "") -> int | None:
    """After an import: a run when imported labels reach the threshold, or, before any model, a
    run that trains if it can and otherwise orders the new pool for a diverse cold start."""
    if labels and (run_id := maybe_request_retrain(session, project, now=now, public_url=public_url)) is not None:
        return run_id
    if project.champion_id is None:
        run, created = request_retrain(session, project, trigger="import", now=now)
        return run.id if created else None
    return None


def request_retrain(session: Session, project: Project, *, trigger: str, now: datetime) -> tuple[RetrainRun, bool]:
    """Return the queued or running run, or queue a new one; the bool says whether it is new."""
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


def run_as_dict(session: Session, run: RetrainRun) -> dict[str, Any]:
    version = None
    if run.model_version_id is not None:
        version = session.scalar(select(ModelVersion.version).where(ModelVersion.id == run.model_version_id))
    return {
        "id": run.id,
        "project_id": run.project_id,
        "status": run.status,
        "trigger": run.trigger,
        "created_at": iso(run.created_at),
        "started_at": iso(run.started_at),
        "finished_at": iso(run.finished_at),
        "model_version": version,
        "error": run.error,
        "result": run.result,
    }
