"""SQLite's text index (FTS5, migration 0014) under a bulk writer: its automatic merging paused,
and its segments merged in short transactions of their own between the writer's.

FTS5 writes each statement's new rows as a segment and, by default (``automerge`` 4), merges
segments inside the write that crosses 64 leaf pages: 64 pages per level of the index at once,
whole terms at a time. Beside an import those merges were the import's longest holds of the write
lock (18-30 ms against about 5 ms, docs/benchmarks.md). Paused, the merging is the same work done
in steps of ``MERGE_PAGES`` pages, each a transaction that an annotator's write can come between.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Iterator

from sqlalchemy import text
from sqlalchemy.orm import Session

from labeling.db import has_text_index, let_waiting_writers_in

log = logging.getLogger(__name__)

MERGE_PAGES = 16  # pages a step writes at least (a step ends at the end of a term)
MERGE_STEPS = 64  # most steps after one of the writer's transactions
DEFAULT_AUTOMERGE = 4  # FTS5's

_AUTOMERGE = text("INSERT INTO examples_fts(examples_fts, rank) VALUES ('automerge', :n)")
_MERGE = text("INSERT INTO examples_fts(examples_fts, rank) VALUES ('merge', :n)")
_SETTING = text("SELECT v FROM examples_fts_config WHERE k = 'automerge'")


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
        changes = raw.total_changes
        session.execute(_MERGE, {"n": MERGE_PAGES})
        merged = raw.total_changes - changes >= 2  # FTS5's sign that it found work
        session.commit()
        let_waiting_writers_in(session)
        if not merged:
            break
        done += 1
    return done
