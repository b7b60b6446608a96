"""Changing what a project is called and which labels it offers, after it was made.

Labels are only added: a stored label names its value, so renaming or removing one would change
or orphan the labels already given (a new project, or an export and re-import, does that).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from labeling import audit, tasks
from labeling.errors import InvalidInput
from labeling.models import Project, User
from labeling.projects import check_writable, checked_name, validate_label_set


def rename_project(session: Session, project: Project, name: Any, *, actor: User, now: datetime) -> bool:
    """Give the project a new name (unique, audited); False when it already had it."""
    new = checked_name(session, name, other_than=project.id)
    if new == project.name:
        return False
    audit.record(session, actor, "project.renamed", project_id=project.id, target=new, now=now,
                 details={"from": project.name})
    project.name = new
    session.flush()
    return True


def add_labels(session: Session, project: Project, names: Any, *, actor: User, now: datetime) -> list[str]:
    """Offer these labels too (each gets a free hotkey); returns the names added (a name the
    set has already is left out)."""
    check_writable(project)
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise InvalidInput.one("a list of label names", field="add_labels")
    known = {label["name"] for label in project.labels}
    new = list(dict.fromkeys(n.strip() for n in names if n.strip() and n.strip() not in known))
    if not new:
        return []
    try:
        labels = validate_label_set([dict(label) for label in project.labels] + new)
        tasks.check_label_set(project.task_kind, [label["name"] for label in labels])
    except InvalidInput as exc:  # said of the new names, where the caller put them
        raise InvalidInput.one(exc.problems[0].message if exc.problems else exc.message, field="add_labels") from None
    project.labels = labels
    audit.record(session, actor, "project.labels_added", project_id=project.id, target=project.name, now=now,
                 details={"labels": new})
    session.flush()
    return new
