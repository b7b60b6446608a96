"""Serving examples to annotators and taking their labels.

Serving is an index search on ``ix_examples_queue`` plus an atomic claim of the lease columns:
a compare-and-set ``UPDATE ... RETURNING`` (SQLite runs it inside ``BEGIN IMMEDIATE``), with
``FOR UPDATE SKIP LOCKED`` in the candidate search on PostgreSQL.
"""

from __future__ import annotations

import functools
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Boolean, and_, bindparam, case, exists, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from labeling.db import dialect_insert
from labeling.errors import Conflict, Forbidden, InvalidInput, NotFound
from labeling.models import Example, Label, Project, Skip, User
from labeling.projects import config, label_names, queue_seed
from labeling.db import iso
from labeling.quality import close_flags_of_replaced_label
from labeling.runs import maybe_request_retrain
from labeling.validation import is_db_int, is_storable_text

CLAIM_ATTEMPTS = 5


@dataclass(frozen=True)
class Lease:
    example_id: int
    external_id: str
    data: dict[str, Any]
    lease_id: int
    expires_at: datetime
    strategy: str
    score: float | None
    model_version: int | None


@dataclass(frozen=True)
class SubmitResult:
    label: Label
    created: bool
    warning: dict[str, Any] | None
    retrain_run_id: int | None


# Serving runs about a dozen statements per label. They are built once, here, with bound
# parameters, and run on the session's connection: building them per call (and the ORM's
# bookkeeping around them) cost several times more than the queries themselves.
_EX, _LB, _SK = Example.__table__, Label.__table__, Skip.__table__
_REPLACER = _LB.alias("replacer")
_FREE = or_(_EX.c.lease_user_id.is_(None), _EX.c.lease_expires_at < bindparam("now"))
_HELD = select(
    _EX.c.id, _EX.c.project_id, _EX.c.external_id, _EX.c.data, _EX.c.lease_id, _EX.c.priority,
    _EX.c.scored_by_version,
).where(
    # Filter on the lease holder alone, so SQLite searches the tiny ix_examples_lease_user (with a
    # project_id term it prefers an index on project_id and scans the whole project).
    _EX.c.lease_user_id == bindparam("user_id"), _EX.c.lease_expires_at >= bindparam("now"), _EX.c.needs_labels,
)
_RENEW_HELD = update(_EX).where(_EX.c.id == bindparam("example_id")).values(lease_expires_at=bindparam("expires"))
_CLAIM = (
    update(_EX)
    .where(_EX.c.id == bindparam("example_id"), _EX.c.needs_labels, _FREE)
    .values(
        lease_id=bindparam("new_lease_id"), lease_user_id=bindparam("user_id"), lease_expires_at=bindparam("expires"),
        # Only a first pick decides whether an example is a holdout or a random pick.
        in_holdout=case((_EX.c.n_labels == 0, bindparam("holdout", type_=Boolean)), else_=_EX.c.in_holdout),
        random_pick=case((_EX.c.n_labels == 0, bindparam("random", type_=Boolean)), else_=_EX.c.random_pick),
    )
    .returning(_EX.c.external_id, _EX.c.data, _EX.c.priority, _EX.c.scored_by_version)
)
_LEASE_GIVEN = (  # one given example, if it is free (or already this user's) and still wanted
    update(_EX)
    .where(_EX.c.id == bindparam("example_id"), _EX.c.project_id == bindparam("in_project"), _EX.c.needs_labels,
           or_(_FREE, _EX.c.lease_user_id == bindparam("user_id")))
    .values(lease_id=bindparam("new_lease_id"), lease_user_id=bindparam("user_id"), lease_expires_at=bindparam("expires"))
    .returning(_EX.c.external_id, _EX.c.data, _EX.c.priority, _EX.c.scored_by_version)
)
_RELEASE = (
    update(_EX)
    .where(_EX.c.id == bindparam("example_id"), _EX.c.lease_user_id == bindparam("user_id"))
    .values(lease_id=None, lease_user_id=None, lease_expires_at=None)
)
# A label row that is this user's current label of the example (not undone, not replaced).
_USERS_CURRENT_LABEL = and_(
    _LB.c.example_id == _EX.c.id, _LB.c.annotator_id == bindparam("user_id"),
    _LB.c.value.is_not(None), ~exists().where(_REPLACER.c.replaces_id == _LB.c.id),
)
_CURRENT_LABEL_OF = select(_LB.c.id).where(_USERS_CURRENT_LABEL).order_by(_LB.c.id.desc()).limit(1).scalar_subquery()
_EXAMPLE_TO_LABEL = select(
    _EX.c.project_id, _EX.c.lease_id, _EX.c.lease_user_id, _EX.c.lease_expires_at, _EX.c.predicted_label,
    _EX.c.confidence, _CURRENT_LABEL_OF.label("previous_id"),
).where(_EX.c.id == bindparam("example_id"))
_LABEL_EVENTS_OF_USER = select(func.count()).where(
    _LB.c.project_id == bindparam("project_id"), _LB.c.annotator_id == bindparam("user_id"))
_LABEL_BY_KEY = select(_LB.c.id).where(
    _LB.c.annotator_id == bindparam("user_id"), _LB.c.idempotency_key == bindparam("key"))


def _unless_mine(column):
    """Keep a lease column unless the lease is this user's (SET sees the row as it was)."""
    return case((_EX.c.lease_user_id == bindparam("user_id"), None), else_=column)


# A first label: count it only if the example still wants one (compare-and-set on n_labels), and
# release the labeler's lease, in one statement.
_COUNT_LABEL_AND_RELEASE = (
    update(_EX)
    .where(_EX.c.id == bindparam("example_id"), _EX.c.n_labels < bindparam("overlap"))
    .values(n_labels=_EX.c.n_labels + 1, needs_labels=_EX.c.n_labels + 1 < bindparam("overlap"),
            lease_id=_unless_mine(_EX.c.lease_id), lease_user_id=_unless_mine(_EX.c.lease_user_id),
            lease_expires_at=_unless_mine(_EX.c.lease_expires_at))
)


def _run(session: Session, statement: Any, **params: Any):
    return session.connection().execute(statement, params)


@functools.cache
def _candidate_statement(postgresql: bool, overlap: bool, order: str):
    """The search for the next example to claim. ``order``: "priority", "draw" (the first at or
    after a uniform draw on random_key, an index search) or "random_key" (the wrap-round)."""
    query = select(_EX.c.id).where(
        _EX.c.project_id == bindparam("project_id"), _EX.c.needs_labels, _FREE,
        ~exists().where(_SK.c.example_id == _EX.c.id, _SK.c.user_id == bindparam("user_id")),
    )
    if overlap:  # the example has no current label from this user
        query = query.where(~exists().where(_USERS_CURRENT_LABEL))
    if order == "draw":
        query = query.where(_EX.c.random_key >= bindparam("draw")).order_by(_EX.c.random_key)
    elif order == "random_key":
        query = query.order_by(_EX.c.random_key)
    else:
        query = query.order_by(_EX.c.priority.desc(), _EX.c.id)
    query = query.limit(1)
    # On PostgreSQL, skip rows another transaction is claiming (SQLite serializes writers).
    return query.with_for_update(skip_locked=True) if postgresql else query


@functools.cache
def _insert_label_statement(dialect: str):
    # ON CONFLICT DO NOTHING instead of a savepoint: a concurrent request with the same key (or a
    # concurrent correction) makes this insert a no-op rather than an error.
    return dialect_insert(dialect, _LB).on_conflict_do_nothing().returning(_LB.c.id)


def lease_next(
    session: Session,
    project: Project,
    user: User,
    *,
    now: datetime,
    lease_seconds: int,
    random_state: int | np.random.Generator | None = None,
) -> Lease | None:
    """Lease the example this user should label next, or return None when there is none.

    The user's own live lease is served again (a reload does not skip an example). Otherwise
    the highest-priority example that still wants labels, is not leased by anyone (or whose
    lease expired) and that this user has not labeled or skipped is claimed atomically. A share
    ``random_share`` of picks (project setting) is taken at random instead, once a model ranks
    the pool.
    """
    expires = now + timedelta(seconds=lease_seconds)
    for held in _run(session, _HELD, user_id=user.id, now=now):
        if held.project_id == project.id:
            _run(session, _RENEW_HELD, example_id=held.id, expires=expires)
            return _lease_of(project, held.id, held.external_id, held.data, held.lease_id, expires,
                             held.priority, held.scored_by_version, picked_at_random=False)
    rng = np.random.default_rng(random_state if random_state is not None else _seeded(session, project, user))
    # A share of picks is random: ``holdout_fraction`` of them become the frozen evaluation set
    # (chosen at random, not by the queue), ``random_share`` keeps the queue honest.
    settings = config(project)
    holdout_pick = rng.random() < settings.holdout_fraction
    at_random = holdout_pick or (
        project.champion_id is not None and rng.random() < settings.random_share
    )
    for _ in range(CLAIM_ATTEMPTS):
        candidate = _candidate(session, project, user, now=now, at_random=at_random, rng=rng)
        if candidate is None:
            if at_random:
                at_random = holdout_pick = False
                continue
            return None
        lease_id = secrets.randbits(52)
        row = _run(session, _CLAIM, example_id=candidate, now=now, new_lease_id=lease_id, user_id=user.id,
                   expires=expires, holdout=holdout_pick and at_random,
                   random=at_random and not holdout_pick).first()
        if row is not None:
            return _lease_of(project, candidate, row.external_id, row.data, lease_id, expires,
                             row.priority, row.scored_by_version, picked_at_random=at_random,
                             holdout=holdout_pick and at_random)
    return None


def _seeded(session: Session, project: Project, user: User) -> list[int] | None:
    """With the project's ``queue_seed``, the picks depend only on the seed, the user and how many
    label events they have given here, so a simulation replays exactly; else None (fresh)."""
    seed = queue_seed(project)
    if seed is None:
        return None
    return [seed, user.id, _run(session, _LABEL_EVENTS_OF_USER, project_id=project.id, user_id=user.id).scalar()]


def _candidate(session: Session, project: Project, user: User, *, now: datetime, at_random: bool,
               rng: np.random.Generator) -> int | None:
    postgresql = session.get_bind().dialect.name == "postgresql"
    overlap = config(project).overlap > 1
    params = {"project_id": project.id, "user_id": user.id, "now": now}
    if at_random:
        found = _run(session, _candidate_statement(postgresql, overlap, "draw"), draw=float(rng.random()),
                     **params).scalar()
        if found is not None:
            return found
        return _run(session, _candidate_statement(postgresql, overlap, "random_key"), **params).scalar()
    return _run(session, _candidate_statement(postgresql, overlap, "priority"), **params).scalar()


def _lease_of(project: Project, example_id: int, external_id: str, data: dict[str, Any], lease_id: int,
              expires: datetime, priority: float, version: int | None, *, picked_at_random: bool,
              holdout: bool = False) -> Lease:
    if holdout:
        strategy, score = "holdout", None
    elif version is None:
        strategy, score = "cold_start", None
    elif picked_at_random:
        strategy, score = "random", None
    else:
        strategy, score = config(project).strategy, priority
    return Lease(example_id, external_id, data, lease_id, expires, strategy, score, version)


def renew_lease(session: Session, user: User, example_id: int, lease_id: int, *, now: datetime,
                lease_seconds: int) -> datetime:
    expires = now + timedelta(seconds=lease_seconds)
    done = session.execute(
        update(Example)
        .where(Example.id == example_id, Example.lease_id == lease_id, Example.lease_user_id == user.id,
               Example.lease_expires_at >= now)
        .values(lease_expires_at=expires)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not done:
        raise Conflict("this lease has expired or is held by someone else; load the next example")
    return expires


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
    public_url: str = "",
) -> SubmitResult:
    """Record ``user``'s label for an example, release their lease, request a retrain if due.

    The same ``idempotency_key`` twice returns the first label and writes nothing. A second label
    by the same user on the same example replaces their first (a correction, a new event).

    Raises
    ------
    InvalidInput
        Unknown label or malformed field.
    NotFound
        No such example in this project.
    Conflict
        The example is leased to someone else, the given lease is no longer the caller's, or the
        example has all the labels it wants.
    """
    if idempotency_key is not None:
        if (not isinstance(idempotency_key, str) or not 1 <= len(idempotency_key) <= 100
                or not is_storable_text(idempotency_key)):
            raise InvalidInput.one("must be a string of 1 to 100 characters", field="idempotency_key")
        earlier_id = _run(session, _LABEL_BY_KEY, user_id=user.id, key=idempotency_key).scalar()
        if earlier_id is not None:
            earlier = session.get(Label, earlier_id)
            return SubmitResult(earlier, False, _warning_of(earlier), None)
    if not is_db_int(example_id):
        raise InvalidInput.one("must be a positive integer id", field="example_id")
    if not isinstance(value, str) or value not in label_names(project):
        raise InvalidInput.one(f"must be one of {', '.join(label_names(project))}", field="label")
    if lease_id is not None and not is_db_int(lease_id):
        raise InvalidInput.one("must be a positive integer id", field="lease_id")
    if duration_ms is not None and (isinstance(duration_ms, bool) or not isinstance(duration_ms, int)
                                    or not 0 <= duration_ms <= 2**31 - 1):
        raise InvalidInput.one("must be a non-negative integer", field="duration_ms")

    example = _run(session, _EXAMPLE_TO_LABEL, example_id=example_id, user_id=user.id).first()
    if example is None or example.project_id != project.id:
        raise NotFound(f"no example with id {example_id} in this project")
    if lease_id is not None and example.lease_id != lease_id:
        raise Conflict("your lease on this example has expired and someone else holds it now")
    leased_to_other = (example.lease_user_id not in (None, user.id) and example.lease_expires_at is not None
                       and example.lease_expires_at >= now)
    if leased_to_other:
        raise Conflict("this example is leased to another annotator")

    previous_id = example.previous_id
    if previous_id is None:
        counted = _run(session, _COUNT_LABEL_AND_RELEASE, example_id=example_id, user_id=user.id,
                       overlap=config(project).overlap).rowcount
        if not counted:
            raise Conflict("this example already has all the labels it needs")
    warning = None
    if (example.predicted_label is not None and example.confidence is not None
            and example.predicted_label != value and example.confidence >= mistake_confidence):
        warning = {"suggested": example.predicted_label, "confidence": round(float(example.confidence), 4)}
    values = {
        "project_id": project.id, "example_id": example_id, "annotator_id": user.id, "value": value,
        "created_at": now, "duration_ms": duration_ms, "replaces_id": previous_id, "source": source,
        "idempotency_key": idempotency_key,
        "warned_suggestion": warning["suggested"] if warning else None,
        "warned_confidence": warning["confidence"] if warning else None,
    }
    label_id = _run(session, _insert_label_statement(session.get_bind().dialect.name), **values).scalar()
    if label_id is None:
        raise Conflict("this label was submitted twice at the same moment; reload and try again")
    if previous_id is not None:  # a correction: the count stands, the lease goes, its flags close
        release_lease(session, user, example_id)
        close_flags_of_replaced_label(session, previous_id, label_id, now=now)
    run_id = maybe_request_retrain(session, project, now=now, public_url=public_url)
    return SubmitResult(Label(id=label_id, **values), True, warning, run_id)


def _warning_of(label: Label) -> dict[str, Any] | None:
    if label.warned_suggestion is None:
        return None
    return {"suggested": label.warned_suggestion, "confidence": label.warned_confidence}


def undo_label(session: Session, user: User, label_id: int, *, now: datetime) -> Label:
    """Withdraw a current label with a new undo event; the example goes back to the queue."""
    label = session.get(Label, label_id)
    if label is None:
        raise NotFound(f"no label with id {label_id}")
    if label.annotator_id != user.id and user.role != "admin":
        raise Forbidden("only the annotator who gave a label (or an admin) can undo it")
    if label.value is None or session.scalar(select(Label.id).where(Label.replaces_id == label.id)):
        raise Conflict("this label was already undone or replaced")
    undo = Label(project_id=label.project_id, example_id=label.example_id, annotator_id=user.id,
                 value=None, created_at=now, replaces_id=label.id, source="undo")
    try:
        with session.begin_nested():
            session.add(undo)
            session.flush()
    except IntegrityError:
        raise Conflict("this label was already undone or replaced") from None
    close_flags_of_replaced_label(session, label.id, undo.id, now=now)
    session.execute(
        update(Example)
        .where(Example.id == label.example_id)
        .values(n_labels=Example.n_labels - 1, needs_labels=True)
        .execution_options(synchronize_session=False)
    )
    return undo


def skip_example(session: Session, project: Project, user: User, example_id: int, *, now: datetime) -> None:
    example = session.get(Example, example_id)
    if example is None or example.project_id != project.id:
        raise NotFound(f"no example with id {example_id} in this project")
    if session.scalar(select(Skip.id).where(Skip.example_id == example_id, Skip.user_id == user.id)) is None:
        session.add(Skip(example_id=example_id, user_id=user.id, created_at=now))
    release_lease(session, user, example_id)
    session.flush()


def label_as_dict(label: Label, annotator_name: str | None) -> dict[str, Any]:
    return {
        "id": label.id,
        "example_id": label.example_id,
        "value": label.value,
        "annotator": annotator_name,
        "created_at": iso(label.created_at),
    }


def labels_today(session: Session, project: Project, user: User, *, now: datetime) -> int:
    start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return session.scalar(
        select(func.count()).where(Label.project_id == project.id, Label.annotator_id == user.id,
                                   Label.value.is_not(None), Label.created_at >= start)
    ) or 0


def get_label(session: Session, label_id: int) -> Label:
    label = session.get(Label, label_id)
    if label is None:
        raise NotFound(f"no label with id {label_id}")
    return label


def lease_example(session: Session, project: Project, user: User, example_id: int, *, now: datetime,
                  lease_seconds: int) -> Lease | None:
    """Lease one given example to ``user`` (after an undo), if it is free and still wanted."""
    lease_id = secrets.randbits(52)
    expires = now + timedelta(seconds=lease_seconds)
    row = _run(session, _LEASE_GIVEN, example_id=example_id, in_project=project.id, user_id=user.id, now=now,
               new_lease_id=lease_id, expires=expires).first()
    if row is None:
        return None
    return _lease_of(project, example_id, row.external_id, row.data, lease_id, expires, row.priority,
                     row.scored_by_version, picked_at_random=False)


def release_lease(session: Session, user: User, example_id: int) -> None:
    _run(session, _RELEASE, example_id=example_id, user_id=user.id)
