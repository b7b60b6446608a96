"""Snapshots: immutable, numbered label-set versions, and the one definition of a current label
(a label event with a value that no later event replaced).

A snapshot is the pair (project, ``max_label_id``): since label rows are append-only, the
current labels as of that id never change. What else an export of it shows is kept as it was:
an example's content before an import replaced it (``example_revisions``), the retrain's
consensus of multi-annotated examples (``snapshot_golds``), and flags as they stood then.
"""

from __future__ import annotations

from datetime import datetime

from typing import Any, Iterable

from sqlalchemy import and_, bindparam, exists, func, insert, literal, select
from sqlalchemy.orm import Session, aliased

from labeling.errors import NotFound
from labeling.models import Example, ExampleRevision, Label, LabelFlag, Project, Snapshot, SnapshotGold

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
    max_example_id = session.scalar(select(func.max(Example.id)).where(Example.project_id == project.id)) or 0
    snapshot = Snapshot(project_id=project.id, number=number, max_label_id=max_id, n_labels=n_labels,
                        created_at=now, reason=reason, max_example_id=max_example_id)
    session.add(snapshot)
    session.flush()
    return snapshot


def find_snapshot(session: Session, project: Project, number: int) -> Snapshot | None:
    return session.scalar(select(Snapshot).where(Snapshot.project_id == project.id, Snapshot.number == number))


def get_snapshot(session: Session, project: Project, number: int) -> Snapshot:
    snapshot = find_snapshot(session, project, number)
    if snapshot is None:
        raise NotFound(f"project {project.id} has no snapshot {number}")
    return snapshot


def unchanged_since(session: Session, project: Project) -> Snapshot | None:
    """The latest snapshot if no label event, no example, no example update (whose old content it
    keeps, ``keep_revisions``) and no flag raised or resolved came after it: a new one would export
    the same rows."""
    latest = session.scalar(select(Snapshot).where(Snapshot.project_id == project.id)
                            .order_by(Snapshot.number.desc()).limit(1))
    if latest is None:
        return None
    max_label = session.scalar(select(func.max(Label.id)).where(Label.project_id == project.id)) or 0
    max_example = session.scalar(select(func.max(Example.id)).where(Example.project_id == project.id)) or 0
    updated = session.scalar(select(ExampleRevision.example_id).join(Example, Example.id == ExampleRevision.example_id)
                             .where(Example.project_id == project.id, ExampleRevision.last_snapshot == latest.number)
                             .limit(1))
    # An export shows flags as they stood at the snapshot (a retrain writes its flags after it).
    flagged = session.scalar(select(LabelFlag.id).where(
        LabelFlag.project_id == project.id,
        (LabelFlag.created_at > latest.created_at) | (LabelFlag.resolved_at > latest.created_at)).limit(1))
    same = (latest.max_label_id, latest.max_example_id, updated, flagged) == (max_label, max_example, None, None)
    return latest if same else None


def list_snapshots(session: Session, project_id: int, *, limit: int, offset: int = 0) -> list[Snapshot]:
    """A project's snapshots, the newest first."""
    return list(session.scalars(select(Snapshot).where(Snapshot.project_id == project_id)
                                .order_by(Snapshot.number.desc()).limit(limit).offset(offset)))


def keep_revisions(session: Session, project_id: int, external_ids: Iterable[str]) -> None:
    """Keep the content of these examples, about to be replaced by an import, for the snapshots
    that saw it: one row per example and latest snapshot (a second update before the next
    snapshot replaces content no snapshot saw)."""
    latest = session.execute(select(Snapshot.number, Snapshot.max_example_id).where(Snapshot.project_id == project_id)
                             .order_by(Snapshot.number.desc()).limit(1)).first()
    external_ids = list(external_ids)
    if latest is None or not external_ids:
        return
    number, max_example_id = latest
    kept = select(ExampleRevision.example_id).where(ExampleRevision.example_id == Example.id,
                                                    ExampleRevision.last_snapshot == number)
    seen = select(Example.id, literal(number), Example.data, Example.features).where(
        Example.project_id == project_id, Example.external_id.in_(external_ids), ~kept.exists())
    if max_example_id is not None:
        seen = seen.where(Example.id <= max_example_id)
    session.execute(insert(ExampleRevision).from_select(
        ["example_id", "last_snapshot", "data", "features"], seen))


def contents_as_of(session: Session, snapshot: Snapshot, example_ids: list[int]) -> dict[int, tuple[Any, bytes | None]]:
    """``{example id: (data, features)}`` for the examples whose content changed after
    ``snapshot``: the oldest revision that snapshot could see."""
    rows = session.execute(
        select(ExampleRevision.example_id, ExampleRevision.data, ExampleRevision.features)
        .where(ExampleRevision.example_id.in_(example_ids), ExampleRevision.last_snapshot >= snapshot.number)
        .order_by(ExampleRevision.example_id, ExampleRevision.last_snapshot.desc()))
    return {example_id: (data, features) for example_id, data, features in rows}  # the oldest wins


def store_golds(session: Session, snapshot: Snapshot, golds: list[tuple[int, str, int]]) -> None:
    """Keep a retrain's consensus ``(example id, label, labels it was taken over)`` for ``snapshot``."""
    if golds:
        session.execute(insert(SnapshotGold), [{"snapshot_id": snapshot.id, "example_id": e, "label": label,
                                                "n_labels": n} for e, label, n in golds])


def golds_as_of(session: Session, snapshot: Snapshot, example_ids: list[int]) -> dict[int, tuple[str, int]]:
    """``{example id: (label, n_labels)}``: the newest consensus taken at or before ``snapshot``."""
    rows = session.execute(
        select(SnapshotGold.example_id, SnapshotGold.label, SnapshotGold.n_labels)
        .join(Snapshot, Snapshot.id == SnapshotGold.snapshot_id)
        .where(SnapshotGold.example_id.in_(example_ids), Snapshot.project_id == snapshot.project_id,
               Snapshot.number <= snapshot.number)
        .order_by(SnapshotGold.example_id, Snapshot.number))
    return {example_id: (label, n) for example_id, label, n in rows}  # the newest wins


def flag_statuses(session: Session, example_ids: list[int], priority: tuple[str, ...],
                  snapshot: Snapshot | None = None) -> dict[int, str]:
    """The most telling flag status of each example (first in ``priority``); as of ``snapshot``:
    flags raised after it are left out and flags resolved after it were still open. (A withdrawn
    flag that reopened later reads as open: its withdrawal time is not kept.)"""
    query = select(LabelFlag.example_id, LabelFlag.status, LabelFlag.created_at, LabelFlag.resolved_at).where(
        LabelFlag.example_id.in_(example_ids))
    if snapshot is not None:
        query = query.where(LabelFlag.created_at <= snapshot.created_at)
    statuses: dict[int, str] = {}
    for example_id, status, _, resolved_at in session.execute(query):
        if snapshot is not None and (resolved_at is None or resolved_at > snapshot.created_at):
            status = "open"
        known = statuses.get(example_id)
        if known is None or priority.index(status) < priority.index(known):
            statuses[example_id] = status
    return statuses
