"""A bulk writer's manners on SQLite (an import publishing, the text index merged in steps):
every writer queues on one write lock, and annotators' requests are among them."""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from typing import Iterator

from sqlalchemy.orm import Session

from labeling import sqlite_lock
from labeling.db import WRITE_PAUSE_SECONDS, commits_skip_the_fsync, sqlite_lock_path

# While annotators' writes have met the bulk writer's lock this recently, it syncs its log and
# rests between transactions (below).
CONTENDED_SECONDS = 10.0
MOST_REST_SECONDS = 0.5  # a contended bulk writer rests as long as its transaction took, up to this


def writers_waiting(session: Session) -> bool:
    """Whether a writer waits for SQLite's write lock now (never on PostgreSQL, nor without the
    file lock): a bulk writer lets it in before its next transaction."""
    lock_path = sqlite_lock_path(session.get_bind().engine)
    return lock_path is not None and sqlite_lock.is_held(lock_path + sqlite_lock.WAITING)


def annotators_meet_its_lock(session: Session) -> bool:
    """Whether writers of other processes have had to wait for SQLite's write lock within
    ``CONTENDED_SECONDS`` (never on PostgreSQL, nor without the file lock)."""
    lock_path = sqlite_lock_path(session.get_bind().engine)
    return lock_path is not None and sqlite_lock.contended_within(lock_path, CONTENDED_SECONDS)


def after_commit(session: Session, *, worked: float = 0.0, most: float = 0.05) -> None:
    """After each of a bulk writer's commits.

    While annotators meet its lock (``CONTENDED_SECONDS``), the log it wrote goes to disk now, out
    of the lock, if its commits skip the fsync (an import's child process): else the next
    annotator's commit, whose fsync takes the whole log, pays for it. And it rests as long as it
    ``worked`` on the transaction (preparing it, waiting for the lock, writing it), so that
    meanwhile it holds the lock at most half the time and leaves the cores to the annotators.
    Then it pauses while a writer waits (at most ``most`` seconds): a released flock is not
    handed on, and straight back for its next transaction the bulk writer would often take it
    again first."""
    engine = session.get_bind().engine
    if annotators_meet_its_lock(session):
        if commits_skip_the_fsync(engine):
            _sync_log(os.path.realpath(engine.url.database) + "-wal")
        time.sleep(min(worked, MOST_REST_SECONDS))
    deadline = time.monotonic() + most
    time.sleep(WRITE_PAUSE_SECONDS)
    while writers_waiting(session) and time.monotonic() < deadline:
        time.sleep(WRITE_PAUSE_SECONDS)


@contextmanager
def checkpointing_the_log(session: Session) -> Iterator[None]:
    """A bulk writer that checkpoints the log itself (``checkpoint_wal`` after its writes) runs
    within this: meanwhile the other connections leave their periodic checkpoint to it, which
    would copy the bulk writer's pages inside an annotator's request."""
    lock_path = sqlite_lock_path(session.get_bind().engine)
    if lock_path is None:
        yield
        return
    with sqlite_lock.bulk_writer(lock_path):
        yield


def _sync_log(path: str) -> None:
    """fsync the log: a courtesy, so a log that cannot be opened (none yet) is left alone."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        getattr(os, "fdatasync", os.fsync)(fd)  # macOS has no fdatasync
    finally:
        os.close(fd)
