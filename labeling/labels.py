"""Label events: appending one, submitting a label, undoing it, reading labels.

Labels are append-only: a correction, an undo or a review adds a row that replaces an earlier
one (``replaces_id``, unique), and every such row goes through :func:`append_label_event`. What
counts as a current label is defined once, in ``labeling.snapshots``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, case, exists, func, select, update
from sqlalchemy.orm import Session, aliased

from labeling.db import dialect_insert
from labeling.errors import Conflict, Forbidden, InvalidInput, NotFound
from labeling.models import Example, Label, LabelFlag, Project, User
from labeling import tasks
from labeling.projects import check_writable, config
from labeling.queue import release_lease, run_statement
from labeling.runs import maybe_request_retrain
from labeling.snapshots import CURRENT_LABEL_OF_USER
from labeling.suggestions import recorded, shown
from labeling.validation import is_db_int, is_storable_text
from labeling.webhooks import Links

_EX, _LB = Example.__table__, Label.__table__

# Where a label submitted through submit_label comes from: the labeling page and API, or the
# labeling page's "change it" answer to a mistake warning. Review, undo and import write their own.
LABELER_SOURCES = ("annotator", "mistake_check")


def _unless_mine(column):
    """Keep a lease column unless the lease is this user's (SET sees the row as it was)."""
    return case((_EX.c.lease_user_id == bindparam("user_id"), None), else_=column)


@dataclass(frozen=True)
class SubmitResult:
    label: Label
    created: bool
    warning: dict[str, Any] | None
    retrain_run_id: int | None


_EXAMPLE_TO_LABEL = select(
    _EX.c.project_id, _EX.c.lease_id, _EX.c.lease_user_id, _EX.c.lease_expires_at, _EX.c.predicted_label,
    _EX.c.confidence, _EX.c.lease_suggestion_mode, _EX.c.lease_suggested, CURRENT_LABEL_OF_USER.label("previous_id"),
).where(_EX.c.id == bindparam("example_id"))


_LABEL_BY_KEY = select(_LB.c.id).where(
    _LB.c.annotator_id == bindparam("user_id"), _LB.c.idempotency_key == bindparam("key"))


# A first label: count it only if the example still wants one (compare-and-set on n_labels), and
# release the labeler's lease, in one statement.
_COUNT_LABEL_AND_RELEASE = (
    update(_EX)
    .where(_EX.c.id == bindparam("example_id"), _EX.c.n_labels < bindparam("overlap"))
    .values(n_labels=_EX.c.n_labels + 1, needs_labels=_EX.c.n_labels + 1 < bindparam("overlap"),
            lease_id=_unless_mine(_EX.c.lease_id), lease_user_id=_unless_mine(_EX.c.lease_user_id),
            lease_expires_at=_unless_mine(_EX.c.lease_expires_at))
)


@functools.cache
def _insert_label_statement(dialect: str):
    # ON CONFLICT DO NOTHING instead of a savepoint: a concurrent request with the same key (or a
    # concurrent correction) makes this insert a no-op rather than an error.
    return dialect_insert(dialect, _LB).on_conflict_do_nothing().returning(_LB.c.id)


def append_label_event(session: Session, *, now: datetime, **values: Any) -> int | None:
    """Append one label event (``values`` are ``Label`` columns); returns its id, or None when
    another event already took its idempotency key or already replaced the same label.

    An event that replaces a label (``replaces_id``) closes that label's open flags: they doubt
    a label that is no longer current.
    """
    values.setdefault("created_at", now)
    label_id = run_statement(session, _insert_label_statement(session.get_bind().dialect.name), **{
        column: values.get(column) for column in _EVENT_COLUMNS}).scalar()
    if label_id is not None and values.get("replaces_id") is not None:
        close_flags_of_replaced_label(session, values["replaces_id"], label_id, now=now)
    return label_id


_EVENT_COLUMNS = ("project_id", "example_id", "annotator_id", "value", "created_at", "duration_ms", "replaces_id",
                  "source", "idempotency_key", "warned_suggestion", "warned_confidence", "suggestion_mode", "suggested")


def replacement_of(session: Session, label_id: int) -> int | None:
    """The event that undid or replaced a label, if any (a label is current until one exists)."""
    return session.scalar(select(Label.id).where(Label.replaces_id == label_id))


def close_flags_of_replaced_label(session: Session, label_id: int, replacement_id: int, *, now: datetime) -> int:
    """Close the open flags of a label that was undone or replaced (status ``superseded``, the
    replacing event as their resolution): the label they doubt is no longer current."""
    return session.execute(
        update(LabelFlag).where(LabelFlag.label_id == label_id, LabelFlag.status == "open")
        .values(status="superseded", resolved_at=now, resolution_label_id=replacement_id)
        .execution_options(synchronize_session=False)).rowcount


def submit_label(
    session: Session,
    project: Project,
    user: User,
    example_id: Any,
    value: Any,
    *,
    now: datetime,
    lease_id: Any = None,
    idempotency_key: Any = None,
    duration_ms: Any = None,
    mistake_confidence: float = 0.9,
    source: str = "annotator",
    links: Links | None = None,
) -> SubmitResult:
    """Record ``user``'s label for an example, release their lease, request a retrain if due.

    The label records the suggestion shown when its lease was served (labeling/suggestions.py).

    The same ``idempotency_key`` twice returns the first label and writes nothing. A second label
    by the same user on the same example replaces their first (a correction, a new event).

    Raises
    ------
    InvalidInput
        Unknown label or malformed field.
    NotFound
        No such example in this project.
    Conflict
        The project is archived, the example is leased to someone else (or the caller's lease
        lapsed and was taken), or the example has all the labels it wants.
    """
    if source not in LABELER_SOURCES:  # the server names the source; a client cannot pose as review or import
        raise InvalidInput.one(f"must be one of {', '.join(LABELER_SOURCES)}", field="source")
    check_writable(project)
    if idempotency_key is not None and (earlier := _earlier_submission(session, user, idempotency_key)) is not None:
        return SubmitResult(earlier, False, _warning_of(earlier), None)
    value = _checked_submission(project, example_id, value, lease_id, duration_ms)
    example = _example_to_label(session, project, user, example_id, lease_id, now=now)

    previous_id = example.previous_id
    if previous_id is None:
        counted = run_statement(session, _COUNT_LABEL_AND_RELEASE, example_id=example_id, user_id=user.id,
                       overlap=config(project).overlap).rowcount
        if not counted:
            raise Conflict("this example already has all the labels it needs")
    warning = _mistake_warning(example, value, mistake_confidence)
    values = {
        "project_id": project.id, "example_id": example_id, "annotator_id": user.id, "value": value,
        "created_at": now, "duration_ms": duration_ms, "replaces_id": previous_id, "source": source,
        "idempotency_key": idempotency_key, **_what_was_shown(project, user, example_id, example, warning),
    }
    label_id = append_label_event(session, now=now, **values)
    if label_id is None:
        raise Conflict("this label was submitted twice at the same moment; reload and try again")
    if previous_id is not None:  # a correction: the count stands, the lease goes
        release_lease(session, user, example_id)
    run_id = maybe_request_retrain(session, project, now=now, links=links)
    return SubmitResult(Label(id=label_id, **values), True, warning, run_id)


def _what_was_shown(project: Project, user: User, example_id: int, example: Any,
                    warning: dict[str, Any] | None) -> dict[str, Any]:
    """The label's record of the model's word: its warning, and the suggestion the page showed,
    as stored with the user's lease when the example was served (a retrain since then does not
    change it). Without a lease of this user nothing was served to them: nothing is recorded. A
    lease served before migration 0015 stored nothing: its suggestion is read from the current
    score, as before."""
    if example.lease_user_id == user.id and example.lease_suggestion_mode is not None:
        suggestion = recorded(example.lease_suggestion_mode, example.lease_suggested)
    elif example.lease_user_id == user.id:
        now_shown = shown(config(project), project.id, example_id, example.predicted_label, example.confidence, None)
        suggestion = recorded(now_shown.mode if now_shown else "off", now_shown.label if now_shown else None)
    else:
        suggestion = recorded("off", None)
    return {"warned_suggestion": warning["suggested"] if warning else None,
            "warned_confidence": warning["confidence"] if warning else None, **suggestion}


def _earlier_submission(session: Session, user: User, idempotency_key: Any) -> Label | None:
    """The label this user already submitted with this key, if any."""
    if (not isinstance(idempotency_key, str) or not 1 <= len(idempotency_key) <= 100
            or not is_storable_text(idempotency_key)):
        raise InvalidInput.one("must be a string of 1 to 100 characters", field="idempotency_key")
    earlier_id = run_statement(session, _LABEL_BY_KEY, user_id=user.id, key=idempotency_key).scalar()
    return None if earlier_id is None else session.get(Label, earlier_id)


def _example_to_label(session: Session, project: Project, user: User, example_id: int, lease_id: int | None, *,
                      now: datetime) -> Any:
    """The example's lease, prediction and this user's current label, if the user may label it."""
    example = run_statement(session, _EXAMPLE_TO_LABEL, example_id=example_id, user_id=user.id).first()
    if example is None or example.project_id != project.id:
        raise NotFound(f"no example with id {example_id} in this project")
    if lease_id is not None and example.lease_id != lease_id:
        if example.lease_id is None:
            raise Conflict(f"lease {lease_id} is not a live lease on this example (a label was given with it, "
                           "or it was released)")
        if example.lease_user_id == user.id:
            raise Conflict(f"lease {lease_id} is not your current lease on this example ({example.lease_id} is)")
        raise Conflict("your lease on this example has expired and someone else holds it now")
    if (example.lease_user_id not in (None, user.id) and example.lease_expires_at is not None
            and example.lease_expires_at >= now):
        raise Conflict("this example is leased to another annotator")
    return example


def _mistake_warning(example: Any, value: str, mistake_confidence: float) -> dict[str, Any] | None:
    """The model's objection to ``value``, when it predicted another label at least this sure."""
    if (example.predicted_label is None or example.confidence is None or example.predicted_label == value
            or example.confidence < mistake_confidence):
        return None
    return {"suggested": example.predicted_label, "confidence": round(float(example.confidence), 4)}


def _checked_submission(project: Project, example_id: Any, value: Any, lease_id: Any, duration_ms: Any) -> str:
    """The stored form of a submitted annotation (labeling/tasks.py), once every field checks out."""
    if not is_db_int(example_id):
        raise InvalidInput.one("must be a positive integer id", field="example_id")
    stored = tasks.encode(project, value)
    if lease_id is not None and not is_db_int(lease_id):
        raise InvalidInput.one("must be a positive integer id", field="lease_id")
    if duration_ms is not None and (isinstance(duration_ms, bool) or not isinstance(duration_ms, int)
                                    or not 0 <= duration_ms <= 2**31 - 1):
        raise InvalidInput.one("must be a non-negative integer", field="duration_ms")
    return stored


def _warning_of(label: Label) -> dict[str, Any] | None:
    if label.warned_suggestion is None:
        return None
    return {"suggested": label.warned_suggestion, "confidence": label.warned_confidence}


def unanswered_warning(session: Session, label: Label) -> dict[str, Any] | None:
    """The mistake warning the labeling page gave ``label`` if its annotator has neither kept
    it (a ``kept_warning`` flag) nor changed it (a replacing label) yet: a page reloaded while it
    was shown asks again rather than letting the doubted label pass unreviewed."""
    if label.source != "annotator" or label.warned_suggestion is None:
        return None
    kept = session.scalar(select(LabelFlag.id).where(LabelFlag.label_id == label.id,
                                                     LabelFlag.reason == "kept_warning").limit(1))
    replaced = session.scalar(select(Label.id).where(Label.replaces_id == label.id).limit(1))
    return None if kept is not None or replaced is not None else _warning_of(label)


def undo_label(session: Session, user: User, label_id: int, *, now: datetime) -> Label:
    """Withdraw a current label with a new undo event; the example goes back to the queue."""
    label = session.get(Label, label_id)
    if label is None:
        raise NotFound(f"no label with id {label_id}")
    if label.annotator_id != user.id and user.role != "admin":
        raise Forbidden("only the annotator who gave a label (or an admin) can undo it")
    check_writable(session.get(Project, label.project_id))
    values = {"project_id": label.project_id, "example_id": label.example_id, "annotator_id": user.id,
              "value": None, "replaces_id": label.id, "source": "undo"}
    undo_id = append_label_event(session, now=now, **values) if label.value is not None else None
    if undo_id is None:
        raise Conflict("this label was already undone or replaced")
    session.execute(
        update(Example)
        .where(Example.id == label.example_id)
        .values(n_labels=Example.n_labels - 1, needs_labels=True)
        .execution_options(synchronize_session=False)
    )
    return Label(id=undo_id, created_at=now, **values)


# A reviewer taking a decision back restores the annotator's label in the annotator's name
# (reopening.reopen_flag): it is their label, but not something they did today or can undo.
NOT_THEIR_ACT = Label.source != "review_undo"


def labels_today(session: Session, project: Project, user: User, *, now: datetime) -> int:
    """The labels ``user`` gave today that they have not undone or replaced themselves (a label
    undone, or changed after a warning, counts once or not at all; one a reviewer corrected
    still counts: the work was done)."""
    start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    later = aliased(Label)
    withdrawn = exists().where(later.replaces_id == Label.id, later.annotator_id == Label.annotator_id)
    return session.scalar(
        select(func.count()).where(Label.project_id == project.id, Label.annotator_id == user.id,
                                   Label.value.is_not(None), Label.created_at >= start, ~withdrawn, NOT_THEIR_ACT)
    ) or 0


def last_label_to_undo(session: Session, project: Project, user: User, *, since: datetime) -> Label | None:
    """``user``'s latest label in ``project`` given since ``since`` that still stands (nobody undid
    or replaced it): what the labeling page offers to undo when it is opened again."""
    later = aliased(Label)
    return session.scalar(
        select(Label).where(Label.project_id == project.id, Label.annotator_id == user.id, Label.value.is_not(None),
                            Label.created_at >= since, ~exists().where(later.replaces_id == Label.id), NOT_THEIR_ACT)
        .order_by(Label.created_at.desc(), Label.id.desc()).limit(1))


def get_label(session: Session, label_id: int) -> Label:
    label = session.get(Label, label_id)
    if label is None:
        raise NotFound(f"no label with id {label_id}")
    return label


def kept_by_annotators() -> list[Any]:
    """Conditions on ``Label`` for the labels annotators gave and kept: one taken back (undo) or
    changed after a warning counts once (its replacement), reviews and imports not at all."""
    revision = aliased(Label)
    taken_back = exists().where(revision.replaces_id == Label.id, revision.source.in_(("undo", "mistake_check")))
    return [Label.value.is_not(None), Label.source.in_(("annotator", "mistake_check")), ~taken_back]
