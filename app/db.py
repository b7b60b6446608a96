"""One database session per request; the view commits, teardown closes (and rolls back)."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from flask import Flask, current_app, g
from sqlalchemy.orm import Session

from labeling.db import make_engine, make_sessionmaker, read_in_own_transaction


def init_db(app: Flask) -> None:
    engine = make_engine(app.config["DATABASE_URL"], sqlite_synchronous=app.config["SQLITE_SYNCHRONOUS"],
                         sqlite_write_lock=app.config["SQLITE_WRITE_LOCK"])
    app.extensions["hitl_engine"] = engine
    app.extensions["hitl_sessionmaker"] = make_sessionmaker(engine)
    app.teardown_appcontext(_close_session)


def get_session() -> Session:
    if "db" not in g:
        g.db = current_app.extensions["hitl_sessionmaker"]()
    return g.db


def new_session() -> Session:
    """A session outside the request (jobs, streamed responses): the caller closes it."""
    return current_app.extensions["hitl_sessionmaker"]()


def _close_session(_exc: BaseException | None) -> None:
    session = g.pop("db", None)
    if session is not None:
        session.close()


@contextmanager
def reading(session: Session) -> Iterator[Session]:
    """Run a request's first reads (who is calling, which project) in a transaction of their own.

    On SQLite a transaction that may write holds the write lock every writer queues on from its
    first statement; reads done first in a read-only transaction keep that lock for the writes
    alone. Inside a transaction already begun, and on PostgreSQL (row locks, no such lock; a
    second transaction would only add a round trip), this changes nothing.
    """
    if session.in_transaction() or session.get_bind().dialect.name != "sqlite":
        yield session
        return
    read_in_own_transaction(session)
    try:
        yield session
    except BaseException:
        session.rollback()
        raise
    session.commit()  # nothing was written: this only ends the read transaction
