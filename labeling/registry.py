"""The model registry: stored model versions, listed and loaded."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from active_learning.models import dump_model, load_model
from labeling.errors import Conflict, NotFound
from labeling.models import ModelVersion, Project, Snapshot


def list_models(session: Session, project_id: int, *, limit: int = 100, offset: int = 0) -> list[ModelVersion]:
    return list(session.scalars(
        select(ModelVersion).where(ModelVersion.project_id == project_id)
        .order_by(ModelVersion.version.desc()).limit(limit).offset(offset)
    ))


def snapshot_number(session: Session, model: ModelVersion) -> int | None:
    """The number of the snapshot a version was trained on."""
    if model.snapshot_id is None:
        return None
    return session.scalar(select(Snapshot.number).where(Snapshot.id == model.snapshot_id))


def pack(serving: Any, evaluating: Any) -> tuple[bytes, str]:
    """Artifact bytes and digest of a version: the model that serves (trained on every label of
    its snapshot) and the one the holdout judges (trained without the holdout)."""
    return dump_model({"serve": serving, "evaluate": evaluating})


def unpack(version: ModelVersion) -> tuple[Any, Any]:
    """``(serving model, evaluation model)`` of a stored version."""
    stored = load_model(version.artifact, version.artifact_sha256)
    return stored["serve"], stored["evaluate"]


def next_version_number(session: Session, project_id: int) -> int:
    return (session.scalar(select(func.max(ModelVersion.version)).where(ModelVersion.project_id == project_id)) or 0) + 1


def load_champion(session: Session, project: Project) -> tuple[ModelVersion, Any]:
    """The champion version and its serving model (trained on every label of its snapshot)."""
    if project.champion_id is None:
        raise Conflict("no model has been trained for this project yet")
    model = session.get(ModelVersion, project.champion_id)
    if model is None:
        raise NotFound("the champion model is missing")
    return model, unpack(model)[0]
