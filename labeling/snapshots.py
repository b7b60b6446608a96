"""Snapshots: immutable, numbered label-set versions, and the one definition of a current label
(a label event with a value that no later event replaced).

A snapshot is the pair (project, ``max_label_id``): since label rows are append-only, the
current labels as of that id never change.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, bindparam, exists, func, select
from sqlalchemy.orm import Session, aliased

from labeling.errors import NotFound
from labeling.models import Example, Label, Project, Snapshot

_Replacer = aliased(Label)

# The same definition as Core expressions for the serving path (built once, bound parameter
# ``user_id``): a label row that is this user's current label of the example in the statement.
_EX, _LB = Example.__table__, Label.__table__
_REPLACER = _LB.alias("replacer")
USERS_CURRENT_LABEL = and_(
    _LB.c.example_id == _EX.c.id, _LB.c.annotator_id == bindparam("user_id"),
    _LB.c.value.is_not(None), ~exists().where(_REPLACER.c.replaces_id == _LB.c.id),
)
CURRENT_LABEL_OF_USER = select(_LB.c.id).where(USERS_CURRENT_LABEL).order_by(_LB.c.id.desc()).limit(1).scalar_subquery()


def current_labels_query(project_id: int, max_label_id: int | None = None, *, example_ids: list[int] | None = None):
    """Label rows that are current as of ``max_label_id`` (all rows when None).

    With ``example_ids`` (of this project), only theirs, found through the example index rather
    than by scanning the project's labels: what a chunked reader wants.
    """
    replaced = select(_Replacer.id).where(_Replacer.replaces_id == Label.id)
    where = Label.example_id.in_(example_ids) if example_ids is not None else Label.project_id == project_id
    query = select(Label).where(where, Label.value.is_not(None))
    if max_label_id is not None:
        query = query.where(Label.id <= max_label_id)
        replaced = replaced.where(_Replacer.id <= max_label_id)
    return query.where(~replaced.exists())


def create_snapshot(session: Session, project: Project, *, now: datetime, reason: str = "manual") -> Snapshot:
    max_id = session.scalar(select(func.max(Label.id)).where(Label.project_id == project.id)) or 0
    n_labels = session.scalar(
        select(func.count()).select_from(current_labels_query(project.id, max_id).subquery())
    ) or 0
    number = (session.scalar(select(func.max(Snapshot.number)).where(Snapshot.project_id == project.id)) or 0) + 1
    snapshot = Snapshot(project_id=project.id, number=number, max_label_id=max_id, n_labels=n_labels,
                        created_at=now, reason=reason)
    session.add(snapshot)
    session.flush()
    return snapshot


def get_snapshot(session: Session, project: Project, number: int) -> Snapshot:
    snapshot = session.scalar(select(Snapshot).where(Snapshot.project_id == project.id, Snapshot.number == number))
    if snapshot is None:
        raise NotFound(f"project {project.id} has no snapshot {number}")
    return snapshot
