"""SQLite's text index (FTS5, migration 0014) under a bulk writer: its automatic merging paused,
and its segments merged in short transactions of their own between the writer's.

FTS5 writes each statement's new rows as a segment and, by default (``automerge`` 4), merges
segments inside the write that crosses 64 leaf pages: 64 pages per level of the index at once,
whole terms at a time. Beside an import those merges were the import's longest holds of the write
lock (18-30 ms against about 5 ms, docs/benchmarks.md). Paused, the merging is the same work done
in steps of ``MERGE_PAGES`` pages, each a transaction that an annotator's write can come between.
An import killed while it publishes leaves the merging paused; ``restore_after_a_killed_import``
resumes it when a process opens the database and no import is alive.
"""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Iterator

from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from labeling import bulk_writer
from labeling.db import has_text_index
from labeling.heartbeat import HEARTBEAT_SECONDS, stale_after
from labeling.models import ImportJob

log = logging.getLogger(__name__)

MERGE_PAGES = 16  # pages a step writes at least (a step ends at the end of a term)
MERGE_STEPS = 64  # most steps after one of the writer's transactions
DEFAULT_AUTOMERGE = 4  # FTS5's

_AUTOMERGE = text("INSERT INTO examples_fts(examples_fts, rank) VALUES ('automerge', :n)")
_MERGE = text("INSERT INTO examples_fts(examples_fts, rank) VALUES ('merge', :n)")
_SETTING = text("SELECT v FROM examples_fts_config WHERE k = 'automerge'")
_HAS_SETTINGS = text("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'examples_fts_config'")


@contextmanager
def merged_in_steps(session: Session) -> Iterator[bool]:
    """Pause the index's automatic merging for the block (on SQLite with the index; yields
    whether it did), restoring the setting after it, whatever happens. Meanwhile call
    ``merge_steps`` after each write transaction. A setting found paused (by another import
    running, or one cut off) is restored to FTS5's default."""
    if session.get_bind().dialect.name != "sqlite" or not has_text_index(session):
        yield False
        return
    before = session.execute(_SETTING).scalar()
    session.execute(_AUTOMERGE, {"n": 0})
    session.commit()
    try:
        yield True
    finally:
        if session.in_transaction():  # left open by an error (a rollback would also expire the caller's objects)
            session.rollback()
        try:
            session.execute(_AUTOMERGE, {"n": int(before or 0) or DEFAULT_AUTOMERGE})
            session.commit()
        except Exception:  # the database away: the next bulk writer restores it
            session.rollback()
            log.warning("could not restore the text index's automerge setting", exc_info=True)


def merge_steps(session: Session) -> int:
    """Merge the index's segments in steps (transactions) of about ``MERGE_PAGES`` pages while
    a level has enough segments to merge, at most ``MERGE_STEPS``; between steps a writer that
    waits for the lock goes first. Returns the steps that merged."""
    done = 0
    while done < MERGE_STEPS:
        raw = session.connection().connection.dbapi_connection  # begins the transaction
        began, changes = time.perf_counter(), raw.total_changes
        session.execute(_MERGE, {"n": MERGE_PAGES})
        merged = raw.total_changes - changes >= 2  # FTS5's sign that it found work
        session.commit()
        bulk_writer.after_commit(session, worked=time.perf_counter() - began)
        if not merged:
            break
        done += 1
    return done


def restore_after_a_killed_import(engine: Engine, *, now: datetime,
                                  heartbeat_seconds: float = HEARTBEAT_SECONDS) -> bool:
    """Restore the index's automatic merging (FTS5's default) if an import killed while it
    published (``kill -9``: no ``finally`` ran) left it paused; returns whether it did. A process
    calls this when it opens the database (``create_app``).

    A pause is left alone while any import is ``running`` with a fresh heartbeat: it may be that
    import's own (a second web worker starting beside it must not undo it). An import marks itself
    running (its claim commits) before it pauses, and this looks and writes in one write
    transaction, so either it sees the import running or the import pauses after it. A running
    import whose heartbeat has stopped is dead (another worker would take it over), as in
    ``labeling.imports.lost_imports``. Costs one read of the index's settings when not paused."""
    if engine.dialect.name != "sqlite":
        return False
    # Read-only first: a process starting takes no write lock unless the merging is paused.
    with engine.connect().execution_options(read_only=True) as conn:
        if not _paused(conn):
            return False
    with engine.begin() as conn:  # BEGIN IMMEDIATE: the write lock, then look again
        if not _paused(conn):
            return False
        alive = conn.execute(select(ImportJob.id).where(
            ImportJob.status == "running",
            ImportJob.heartbeat_at >= now - stale_after(heartbeat_seconds)).limit(1)).first()
        if alive is not None:
            return False
        conn.execute(_AUTOMERGE, {"n": DEFAULT_AUTOMERGE})
    log.warning("restored the text index's automatic merging, left paused by an import that was killed")
    return True


def _paused(conn: Any) -> bool:
    if conn.execute(_HAS_SETTINGS).first() is None:  # no text index (an old SQLite), or not migrated yet
        return False
    value = conn.execute(_SETTING).scalar()
    return value is not None and int(value) == 0
