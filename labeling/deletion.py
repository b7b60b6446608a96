"""Deleting a project and everything of it, in the caller's transaction, in set-based statements.

A fixed list of ``DELETE … WHERE project_id = ?`` (or ``… IN (SELECT id … WHERE project_id = ?)``)
statements, children before parents, so the number of statements does not grow with the project
and no row is loaded into Python. The foreign keys stay on (SQLite and PostgreSQL check each
statement); the cycles between runs, models and the project's champion are cut first with
``UPDATE … SET … = NULL``. Labels point at the labels they replace: one statement deletes them
all, and both databases check a statement's foreign keys once it is done. The audit trail has no
foreign keys and keeps every event of the project, the deletion's own included. The text index
goes with the examples: on SQLite a trigger removes each deleted example from ``examples_fts``
(migration 0010), on PostgreSQL the trigram indexes are indexes of ``examples``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from labeling import audit
from labeling.errors import InvalidInput
from labeling.models import (Example, ExampleEmbedding, ExampleRevision, ImportJob, ImportUpload, Label, LabelDoubt,
                             LabelFlag, ModelVersion, Project, ProjectMember, RetrainRun, Skip, Snapshot, SnapshotGold,
                             WebhookAttempt, WebhookDelivery)


def _statements(project_id: int) -> list[tuple[str, Any]]:
    """``(what, statement)`` in an order the foreign keys allow."""
    examples = select(Example.id).where(Example.project_id == project_id)
    deliveries = select(WebhookDelivery.id).where(WebhookDelivery.project_id == project_id)
    imports = select(ImportJob.id).where(ImportJob.project_id == project_id)
    return [
        ("", update(Project).where(Project.id == project_id).values(champion_id=None)),
        ("", update(RetrainRun).where(RetrainRun.project_id == project_id).values(model_version_id=None)),
        ("webhook_attempts", delete(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(deliveries))),
        ("webhook_deliveries", delete(WebhookDelivery).where(WebhookDelivery.project_id == project_id)),
        ("import_uploads", delete(ImportUpload).where(ImportUpload.import_id.in_(imports))),
        ("imports", delete(ImportJob).where(ImportJob.project_id == project_id)),
        ("flags", delete(LabelFlag).where(LabelFlag.project_id == project_id)),
        ("doubts", delete(LabelDoubt).where(LabelDoubt.project_id == project_id)),
        ("models", delete(ModelVersion).where(ModelVersion.project_id == project_id)),
        ("runs", delete(RetrainRun).where(RetrainRun.project_id == project_id)),
        ("snapshot_golds", delete(SnapshotGold).where(SnapshotGold.example_id.in_(examples))),
        ("snapshots", delete(Snapshot).where(Snapshot.project_id == project_id)),
        ("revisions", delete(ExampleRevision).where(ExampleRevision.example_id.in_(examples))),
        ("skips", delete(Skip).where(Skip.example_id.in_(examples))),
        ("embeddings", delete(ExampleEmbedding).where(ExampleEmbedding.example_id.in_(examples))),
        ("labels", delete(Label).where(Label.project_id == project_id)),
        ("examples", delete(Example).where(Example.project_id == project_id)),
        ("members", delete(ProjectMember).where(ProjectMember.project_id == project_id)),
        ("projects", delete(Project).where(Project.id == project_id)),
    ]


def delete_project(session: Session, project: Project, confirm: Any, *, actor: audit.Actor,
                   now: datetime) -> dict[str, int]:
    """Delete ``project`` with its examples, labels, models, runs, flags, snapshots, imports,
    webhook deliveries and members, in the caller's transaction; return how many rows went, by
    kind. Audited as ``project.deleted`` (the project's name in its details).

    Raises
    ------
    InvalidInput
        ``confirm`` is not the project's name (field ``confirm``).
    """
    if not isinstance(confirm, str) or not confirm:
        raise InvalidInput.one("type the project's name to confirm the deletion", field="confirm")
    if confirm != project.name:
        raise InvalidInput.one("does not match the project's name; nothing was deleted", field="confirm")
    project_id, name = project.id, project.name
    counts: dict[str, int] = {}
    for what, statement in _statements(project_id):
        done = session.execute(statement.execution_options(synchronize_session=False)).rowcount
        if what and what != "projects":
            counts[what] = done
    session.expunge(project)
    audit.record(session, actor, "project.deleted", project_id=project_id, target=name, now=now,
                 details={"name": name, **counts})
    session.flush()
    return counts
