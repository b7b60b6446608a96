"""Taking back a reviewer's decision on a flag (a misclick): the flag opens again and the label
it doubted is current again. Labels are events, so nothing is erased: a restoring event is added."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from labeling import audit
from labeling.errors import Conflict, Forbidden, NotFound
from labeling.labels import append_label_event, replacement_of
from labeling.models import Label, LabelFlag, Project, User
from labeling.projects import check_writable

DECIDED = ("confirmed", "corrected", "dismissed")


def _reopenable() -> list[Any]:
    """Conditions on ``LabelFlag``: decided, and the label the decision left (the review's event,
    or the flagged label it kept) still current: what ``reopen_flag`` can take back."""
    left = func.coalesce(LabelFlag.resolution_label_id, LabelFlag.label_id)
    return [LabelFlag.status.in_(DECIDED), ~exists().where(Label.replaces_id == left)]


def last_decision(session: Session, project_id: int, reviewer: User, *, since: datetime) -> LabelFlag | None:
    """``reviewer``'s latest decision in the project since ``since`` that can still be taken back:
    after it is, the one before, so the review page walks back one decision at a time."""
    return session.scalar(select(LabelFlag).where(
        LabelFlag.project_id == project_id, LabelFlag.resolved_by_id == reviewer.id, LabelFlag.resolved_at >= since,
        *_reopenable()).order_by(LabelFlag.resolved_at.desc(), LabelFlag.id.desc()).limit(1))


def reopenable_flags(session: Session, example_id: int) -> set[int]:
    """The ids of an example's flags whose decision can still be taken back (its page offers them)."""
    return set(session.scalars(select(LabelFlag.id).where(LabelFlag.example_id == example_id, *_reopenable())))


def reopen_flag(session: Session, flag_id: int, reviewer: User, *, now: datetime) -> LabelFlag:
    """Take back a decision on a flag (a reviewer's misclick): the flag is open again and, after
    confirm or correct, the given label is current again, as a new event (source ``review_undo``,
    in its annotator's name, so their counts stay theirs) that the flag now points at. Nothing is
    erased. Only the reviewer who decided, or an admin, and only while the example's label is the
    one the decision left.

    Raises
    ------
    Forbidden
        Someone else decided it (and the caller is no admin).
    Conflict
        The flag is open, was closed by the service (superseded, withdrawn), or the example was
        relabeled since.
    """
    # Locked (PostgreSQL): a second reopen, or a decision, at the same moment waits and then sees this one.
    flag = session.scalar(select(LabelFlag).where(LabelFlag.id == flag_id).with_for_update())
    if flag is None:
        raise NotFound(f"no flag with id {flag_id}")
    if flag.status not in DECIDED:
        raise Conflict(f"only a reviewer's decision can be taken back; this flag is {flag.status}")
    if flag.resolved_by_id != reviewer.id and reviewer.role != "admin":
        raise Forbidden("another reviewer decided this flag; only they or an admin can take it back")
    check_writable(session.get(Project, flag.project_id))
    current_id = flag.resolution_label_id or flag.label_id  # the label the decision left (as _reopenable)
    changed = Conflict("the example was relabeled since this decision; open the example to change its label")
    if replacement_of(session, current_id) is not None:
        raise changed
    if flag.status != "dismissed":
        flagged = session.get(Label, flag.label_id)
        restored = append_label_event(session, now=now, project_id=flag.project_id, example_id=flag.example_id,
                                      annotator_id=flagged.annotator_id, value=flagged.value, replaces_id=current_id,
                                      source="review_undo")
        if restored is None:
            raise changed
        flag.label_id = restored
    audit.record(session, reviewer, "flag.reopened", project_id=flag.project_id, target=flag.id, now=now,
                 details={"was": flag.status})
    flag.status, flag.resolved_by_id, flag.resolved_at, flag.resolution_label_id = "open", None, None, None
    session.flush()
    return flag
