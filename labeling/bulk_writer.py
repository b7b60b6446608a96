"""A bulk writer's manners on SQLite (an import publishing, the text index merged in steps):
every writer queues on one write lock, and annotators' requests are among them."""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from typing import Iterator

from sqlalchemy.orm import Session

from labeling import sqlite_lock
from labeling.db import WRITE_PAUSE_SECONDS, sqlite_lock_path

# While annotators' writes have met the bulk writer's lock this recently, it paces itself (below).
CONTENDED_SECONDS = 10.0
# Meanwhile it rests this long per second it held the lock: at most half the time holding it.
REST_PER_HOLD = 1.0


def writers_waiting(session: Session) -> bool:
    """Whether a writer waits for SQLite's write lock now (never on PostgreSQL, nor without the
    file lock): a bulk writer lets it in before its next transaction."""
    lock_path = sqlite_lock_path(session.get_bind().engine)
    return lock_path is not None and sqlite_lock.is_held(lock_path + sqlite_lock.WAITING)


def after_commit(session: Session, *, held: float, most: float = 0.05) -> None:
    """After each of a bulk writer's commits (``held``: seconds its transaction held the lock).

    While annotators meet its lock (``CONTENDED_SECONDS``): the log it wrote goes to disk now, out
    of the lock (the bulk writer skips the fsync in its commits; an annotator's commit, which
    syncs the whole log, paid for it), and it rests ``REST_PER_HOLD`` times its hold, so that an
    annotator's write finds the lock free more often. Alone, it goes on at once. Either way it
    pauses while a writer waits (at most ``most`` seconds): a released flock is not handed on,
    and straight back for its next transaction the bulk writer would often take it again first."""
    lock_path = sqlite_lock_path(session.get_bind().engine)
    rest = 0.0
    if lock_path is not None and sqlite_lock.contended_within(lock_path, CONTENDED_SECONDS):
        _sync_log(session.get_bind().url.database + "-wal")
        rest = held * REST_PER_HOLD
    deadline = time.monotonic() + max(most, rest)
    time.sleep(max(WRITE_PAUSE_SECONDS, rest))
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
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:  # checkpointed and removed meanwhile: nothing to sync
        return
    try:
        os.fdatasync(fd)
    finally:
        os.close(fd)
