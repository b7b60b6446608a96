"""The JSON shapes of the API's objects, in one place (the domain returns objects and ids).

The pages use the same shapes where they show the same facts (runs, models, deliveries).
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit
from typing import Any

from labeling.browse import History, Row
from labeling.db import iso
from labeling.examples import features_from_bytes
from labeling.imports import progress
from labeling.models import (ApiToken, AuditEvent, Example, ImportJob, Label, LabelFlag, ModelVersion, Project, RetrainRun, User,
                             WebhookDelivery)

MODEL_METRICS = ("accuracy", "macro_f1", "n_holdout")


def project_json(project: Project, *, admin: bool, counts: dict[str, int] | None = None,
                 champion: int | None = None) -> dict[str, Any]:
    """A project; ``admin``: the viewer may see where its webhooks go (a URL can hold a token)."""
    settings = dict(project.settings)
    if settings.get("webhook_secret"):
        settings["webhook_secret"] = "whsec_…"  # shown once at creation, never again
    if not admin:
        settings["webhook_url"] = webhook_host(settings.get("webhook_url", ""))
    out: dict[str, Any] = {
        "id": project.id,
        "name": project.name,
        "task_kind": project.task_kind,
        "labels": [l["name"] for l in project.labels],
        "hotkeys": {l["name"]: l["hotkey"] for l in project.labels},
        "settings": settings,
        "created_at": iso(project.created_at),
        "archived": project.archived_at is not None,
        "archived_at": iso(project.archived_at),
    }
    if counts is not None:
        out["counts"] = counts
        out["champion_model_version"] = champion
    return out


def webhook_host(url: str) -> str:
    """Where a webhook goes, for a viewer who is not an admin: its scheme and host only."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}/…" if url and parts.hostname else ""


def annotation_json(stored: str | None, multi: bool) -> Any:
    """A stored annotation as the API shows it: a label name, or (``multi``: a multi-label
    project) the list of names (labeling/tasks.py)."""
    return json.loads(stored) if multi and stored is not None else stored


def label_json(label: Label, annotator_name: str | None, *, multi: bool = False) -> dict[str, Any]:
    return {"id": label.id, "example_id": label.example_id, "value": annotation_json(label.value, multi),
            "annotator": annotator_name, "created_at": iso(label.created_at),
            "suggestion_mode": label.suggestion_mode, "suggested": annotation_json(label.suggested, multi)}


def run_json(run: RetrainRun, model_version: int | None) -> dict[str, Any]:
    return {
        "id": run.id, "project_id": run.project_id, "status": run.status, "trigger": run.trigger,
        "created_at": iso(run.created_at), "started_at": iso(run.started_at), "finished_at": iso(run.finished_at),
        # The error's first line: its traceback names server paths and is in the server's log.
        "model_version": model_version, "error": run.error.splitlines()[0] if run.error else None, "result": run.result,
    }


def import_json(job: ImportJob) -> dict[str, Any]:
    return {
        "id": job.id, "project_id": job.project_id, "status": job.status, "phase": job.phase,
        "progress": round(progress(job), 4), "format": job.format, "filename": job.filename, "source": job.source,
        "on_duplicate": "update" if job.update_duplicates else "skip",
        "bytes_total": job.bytes_total, "bytes_read": job.bytes_read, "rows_valid": job.rows_valid,
        "rows_published": job.rows_published, "imported": job.imported, "duplicates": job.duplicates,
        "labels": job.labels, "updated": job.updated, "errors": job.problems or [], "total_errors": job.n_problems,
        "error_groups": job.problem_groups or [],
        "error": job.error.splitlines()[0] if job.error else None, "run_id": job.run_id, "attempts": job.attempts,
        "created_at": iso(job.created_at), "started_at": iso(job.started_at), "finished_at": iso(job.finished_at),
    }


def model_json(model: ModelVersion, snapshot: int | None) -> dict[str, Any]:
    metrics = {k: v for k, v in model.metrics.items() if k in MODEL_METRICS}
    return {
        "version": model.version, "status": model.status, "trained_at": iso(model.trained_at),
        "n_labels": model.n_labels, "metrics": metrics, "snapshot": snapshot,
        "details": {k: v for k, v in model.metrics.items() if k not in metrics},
    }


CLOSED_BECAUSE = {  # flags that closed without a reviewer's verdict
    "superseded": "the label was undone or replaced after it was flagged",
    "withdrawn": "a later model found the label more likely right than wrong",
}


def flag_json(flag: LabelFlag, external_id: str, *, multi: bool = False) -> dict[str, Any]:
    return {
        "id": flag.id, "label_id": flag.label_id, "example_id": flag.example_id, "external_id": external_id,
        "given": annotation_json(flag.given, multi), "suggested": annotation_json(flag.suggested, multi), "score": round(flag.score, 6), "reason": flag.reason,
        "status": flag.status, "created_at": iso(flag.created_at), "resolved_at": iso(flag.resolved_at),
        **({"closed_because": CLOSED_BECAUSE[flag.status]} if flag.status in CLOSED_BECAUSE else {}),
    }


def delivery_json(delivery: WebhookDelivery) -> dict[str, Any]:
    return {
        "id": delivery.id, "msg_id": delivery.msg_id, "event": delivery.event, "url": delivery.url,
        "status": delivery.status, "attempts": delivery.attempts, "created_at": iso(delivery.created_at),
        "next_attempt_at": iso(delivery.next_attempt_at), "delivered_at": iso(delivery.delivered_at),
        "last_status_code": delivery.last_status_code, "last_error": delivery.last_error,
        "payload": json.loads(delivery.body),
    }


def user_json(user: User) -> dict[str, Any]:
    return {"id": user.id, "name": user.name, "role": user.role, "active": user.active,
            "created_at": iso(user.created_at)}


def token_json(token: ApiToken, owner: str) -> dict[str, Any]:
    return {"id": token.id, "name": token.name, "user": owner, "created_at": iso(token.created_at),
            "expires_at": iso(token.expires_at), "last_used_at": iso(token.last_used_at)}


def audit_json(event: AuditEvent) -> dict[str, Any]:
    out: dict[str, Any] = {"id": event.id, "at": iso(event.at), "actor": event.actor_name, "actor_id": event.actor_id,
                           "action": event.action}
    if event.project_id is not None:
        out["project"] = event.project_id
    if event.target is not None:
        out["target"] = event.target
    out["details"] = event.details
    return out


def prediction_json(example: Example) -> dict[str, Any] | None:
    """The model's stored score of an example (set by the last re-scoring), if it was scored."""
    if example.scored_by_version is None:
        return None
    return {"label": example.predicted_label, "confidence": example.confidence,
            "model_version": example.scored_by_version}


def example_data(example: Example) -> dict[str, Any]:
    return {**example.data, **({"features": features_from_bytes(example.features)} if example.features else {})}


def browsed_example_json(row: Row, *, multi: bool = False) -> dict[str, Any]:
    """An example in a browse page: its current labels, open flags and prediction."""
    example = row.example
    out: dict[str, Any] = {"id": example.id, "external_id": example.external_id, "data": example_data(example),
                           "labels": [{**label_json(l, name, multi=multi), "source": l.source} for l, name in row.labels],
                           "open_flags": row.open_flags,
                           "in_holdout": example.in_holdout}
    if (prediction := prediction_json(example)) is not None:
        out["prediction"] = prediction
    return out


def label_event_json(label: Label, annotator_name: str | None, current: bool, *, multi: bool = False) -> dict[str, Any]:
    return {**label_json(label, annotator_name, multi=multi), "source": label.source, "replaces": label.replaces_id,
            "current": current}


def history_json(found: History, *, multi: bool = False) -> dict[str, Any]:
    """An example with every label event on it (oldest first), its prediction and its flags."""
    example = found.example
    out: dict[str, Any] = {
        "id": example.id, "project_id": example.project_id, "external_id": example.external_id,
        "data": example_data(example), "in_holdout": example.in_holdout,
        "labels": [label_event_json(l, name, l.id in found.current_ids, multi=multi) for l, name in found.events],
        "flags": [{**flag_json(flag, example.external_id, multi=multi), "resolved_by": name}
                  for flag, name in found.flags],
    }
    if (prediction := prediction_json(example)) is not None:
        out["prediction"] = prediction
    return out
