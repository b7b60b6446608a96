"""Serving examples to annotators: leases on the next example, renewed, released, skipped.

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
from sqlalchemy import Boolean, bindparam, case, delete, exists, func, or_, select, update
from sqlalchemy.orm import Session

from labeling.errors import Conflict
from labeling.examples import get_project_example
from labeling.models import Example, Label, Project, Skip, User
from labeling.projects import ProjectConfig, check_writable, config
from labeling.snapshots import USERS_CURRENT_LABEL
from labeling.suggestions import Shown, lease_columns, served_mode, shown

# Priority bands, set by labeling/rescoring.py: model scores in [0, 1], the next batch's picks above them.
BATCH_BAND = 1.0  # ranked-batch and diverse-batch picks: priorities in [1, 2)
COLD_START_BAND = 2.0  # cold-start and class-discovery picks: priorities in [2, 3)

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
    # What the page shows of the model's prediction; None when the project's suggestions are off.
    suggestion: Shown | None = None

    @property
    def batch_pick(self) -> bool:
        """Picked for the next batch (a rank in the batch band), not served by its own score."""
        return self.score is not None and self.score >= BATCH_BAND


# Serving runs about a dozen statements per label. They are built once, here, with bound
# parameters, and run on the session's connection: building them per call (and the ORM's
# bookkeeping around them) cost several times more than the queries themselves.
_EX, _LB, _SK = Example.__table__, Label.__table__, Skip.__table__
_FREE = or_(_EX.c.lease_user_id.is_(None), _EX.c.lease_expires_at < bindparam("now"))
# The stored score a suggestion is made of (labeling/suggestions.py).
_PREDICTION = (_EX.c.predicted_label, _EX.c.confidence, _EX.c.suggestion_probs)
_HELD = select(
    _EX.c.id, _EX.c.project_id, _EX.c.external_id, _EX.c.data, _EX.c.lease_id, _EX.c.priority,
    _EX.c.scored_by_version, *_PREDICTION,
).where(
    # Filter on the lease holder alone, so SQLite searches the tiny ix_examples_lease_user (with a
    # project_id term it prefers an index on project_id and scans the whole project).
    _EX.c.lease_user_id == bindparam("user_id"), _EX.c.lease_expires_at >= bindparam("now"), _EX.c.needs_labels,
)
# Every statement that serves a lease stores what the page is shown (labeling/suggestions.py).
_SHOWN = lease_columns(_EX)
_RENEW_HELD = update(_EX).where(_EX.c.id == bindparam("example_id")).values(lease_expires_at=bindparam("expires"),
                                                                           **_SHOWN)
_CLAIM = (
    update(_EX)
    .where(_EX.c.id == bindparam("example_id"), _EX.c.needs_labels, _FREE)
    .values(
        lease_id=bindparam("new_lease_id"), lease_user_id=bindparam("user_id"), lease_expires_at=bindparam("expires"),
        # Only a first pick decides whether an example is a holdout or a random pick.
        in_holdout=case((_EX.c.n_labels == 0, bindparam("holdout", type_=Boolean)), else_=_EX.c.in_holdout),
        random_pick=case((_EX.c.n_labels == 0, bindparam("random", type_=Boolean)), else_=_EX.c.random_pick),
        **_SHOWN,
    )
    .returning(_EX.c.external_id, _EX.c.data, _EX.c.priority, _EX.c.scored_by_version, *_PREDICTION)
)
_LEASE_GIVEN = (  # one given example, if it is free (or already this user's) and still wanted
    update(_EX)
    .where(_EX.c.id == bindparam("example_id"), _EX.c.project_id == bindparam("in_project"), _EX.c.needs_labels,
           or_(_FREE, _EX.c.lease_user_id == bindparam("user_id")))
    .values(lease_id=bindparam("new_lease_id"), lease_user_id=bindparam("user_id"), lease_expires_at=bindparam("expires"),
            **_SHOWN)
    .returning(_EX.c.external_id, _EX.c.data, _EX.c.priority, _EX.c.scored_by_version, *_PREDICTION)
)
_RELEASE = (
    update(_EX)
    .where(_EX.c.id == bindparam("example_id"), _EX.c.lease_user_id == bindparam("user_id"))
    .values(lease_id=None, lease_user_id=None, lease_expires_at=None)
)
_LABEL_EVENTS_OF_USER = select(func.count()).where(
    _LB.c.project_id == bindparam("project_id"), _LB.c.annotator_id == bindparam("user_id"))


def run_statement(session: Session, statement: Any, **params: Any):
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
        query = query.where(~exists().where(USERS_CURRENT_LABEL))
    if order == "draw":
        query = query.where(_EX.c.random_key >= bindparam("draw")).order_by(_EX.c.random_key)
    elif order == "random_key":
        query = query.order_by(_EX.c.random_key)
    else:
        query = query.order_by(_EX.c.priority.desc(), _EX.c.id)
    query = query.limit(1)
    # On PostgreSQL, skip rows another transaction is claiming (SQLite serializes writers).
    return query.with_for_update(skip_locked=True) if postgresql else query


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
    the pool. An archived project serves nothing (Conflict).
    """
    check_writable(project)
    expires = now + timedelta(seconds=lease_seconds)
    settings = config(project)  # once: every step below reads it
    for held in run_statement(session, _HELD, user_id=user.id, now=now):
        if held.project_id == project.id:
            run_statement(session, _RENEW_HELD, example_id=held.id, expires=expires,
                          served_mode=served_mode(settings, project.id, held.id))
            return _lease_of(settings, project.id, held.id, held, held.lease_id, expires, picked_at_random=False)
    rng = np.random.default_rng(random_state if random_state is not None
                                else _seeded(session, project, user, settings.queue_seed))
    # A share of picks is random: ``holdout_fraction`` of them become the frozen evaluation set
    # (chosen at random, not by the queue), ``random_share`` keeps the queue honest.
    holdout_pick = rng.random() < settings.holdout_fraction
    at_random = holdout_pick or (
        project.champion_id is not None and rng.random() < settings.random_share
    )
    for _ in range(CLAIM_ATTEMPTS):
        candidate = _candidate(session, project, user, now=now, at_random=at_random, rng=rng,
                               overlap=settings.overlap > 1)
        if candidate is None:
            if at_random:
                at_random = holdout_pick = False
                continue
            return None
        lease_id = secrets.randbits(52)
        row = run_statement(session, _CLAIM, example_id=candidate, now=now, new_lease_id=lease_id, user_id=user.id,
                   expires=expires, holdout=holdout_pick and at_random,
                   random=at_random and not holdout_pick,
                   served_mode=served_mode(settings, project.id, candidate)).first()
        if row is not None:
            return _lease_of(settings, project.id, candidate, row, lease_id, expires, picked_at_random=at_random,
                             holdout=holdout_pick and at_random)
    return None


def _seeded(session: Session, project: Project, user: User, seed: int | None) -> list[int] | None:
    """With the project's ``queue_seed``, the picks depend only on the seed, the user and how many
    label events they have given here, so a simulation replays exactly; else None (fresh)."""
    if seed is None:
        return None
    return [seed, user.id, run_statement(session, _LABEL_EVENTS_OF_USER, project_id=project.id, user_id=user.id).scalar()]


def _candidate(session: Session, project: Project, user: User, *, now: datetime, at_random: bool,
               rng: np.random.Generator, overlap: bool) -> int | None:
    postgresql = session.get_bind().dialect.name == "postgresql"
    params = {"project_id": project.id, "user_id": user.id, "now": now}
    if at_random:
        found = run_statement(session, _candidate_statement(postgresql, overlap, "draw"), draw=float(rng.random()),
                     **params).scalar()
        if found is not None:
            return found
        return run_statement(session, _candidate_statement(postgresql, overlap, "random_key"), **params).scalar()
    return run_statement(session, _candidate_statement(postgresql, overlap, "priority"), **params).scalar()


def _lease_of(settings: ProjectConfig, project_id: int, example_id: int, row: Any, lease_id: int,
              expires: datetime, *, picked_at_random: bool, holdout: bool = False) -> Lease:
    """The lease of a claimed ``row`` (external_id, data, priority, scored_by_version, the prediction)."""
    version = row.scored_by_version
    if holdout:
        strategy, score = "holdout", None
    elif version is None:  # before any model: a random project serves a random order, others the cold start
        strategy, score = ("random" if settings.strategy == "random" else "cold_start"), None
    elif row.priority is not None and row.priority >= COLD_START_BAND:  # a class no label names yet is looked for
        strategy, score = "discovery", None
    elif picked_at_random:
        strategy, score = "random", None
    else:
        strategy, score = settings.strategy, row.priority
    suggestion = shown(settings, project_id, example_id, row.predicted_label, row.confidence, row.suggestion_probs)
    return Lease(example_id, row.external_id, row.data, lease_id, expires, strategy, score, version, suggestion)


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


def skip_example(session: Session, project: Project, user: User, example_id: int, *, now: datetime) -> None:
    check_writable(project)
    get_project_example(session, project.id, example_id)
    if session.scalar(select(Skip.id).where(Skip.example_id == example_id, Skip.user_id == user.id)) is None:
        session.add(Skip(example_id=example_id, user_id=user.id, created_at=now))
    release_lease(session, user, example_id)
    session.flush()


def skipped_count(session: Session, project: Project, user: User) -> int:
    """How many examples of the project that still need labels ``user`` skipped."""
    return session.scalar(select(func.count()).select_from(Skip).join(Example, Example.id == Skip.example_id)
                          .where(Skip.user_id == user.id, Example.project_id == project.id, Example.needs_labels)) or 0


def forget_skips(session: Session, project: Project, user: User) -> int:
    """Serve ``user`` the examples of the project they skipped again; returns how many skips went."""
    check_writable(project)
    in_project = select(Example.id).where(Example.project_id == project.id)
    return session.execute(delete(Skip).where(Skip.user_id == user.id, Skip.example_id.in_(in_project))).rowcount


def lease_example(session: Session, project: Project, user: User, example_id: int, *, now: datetime,
                  lease_seconds: int) -> Lease | None:
    """Lease one given example to ``user`` (after an undo), if it is free and still wanted."""
    check_writable(project)
    lease_id = secrets.randbits(52)
    expires = now + timedelta(seconds=lease_seconds)
    settings = config(project)
    row = run_statement(session, _LEASE_GIVEN, example_id=example_id, in_project=project.id, user_id=user.id, now=now,
               new_lease_id=lease_id, expires=expires, served_mode=served_mode(settings, project.id, example_id)).first()
    if row is None:
        return None
    return _lease_of(settings, project.id, example_id, row, lease_id, expires, picked_at_random=False)


def release_lease(session: Session, user: User, example_id: int) -> None:
    run_statement(session, _RELEASE, example_id=example_id, user_id=user.id)
