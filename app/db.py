"""One database session per request; the view commits, teardown closes (and rolls back)."""

from __future__ import annotations

import os

from flask import Flask, current_app, g
from sqlalchemy.orm import Session

from labeling import text_index
from labeling.db import add_missing_text_index, check_text_index, make_engine, make_sessionmaker, utcnow


def init_db(app: Flask) -> None:
    engine = make_engine(app.config["DATABASE_URL"], sqlite_synchronous=app.config["SQLITE_SYNCHRONOUS"],
                         sqlite_write_lock=app.config["SQLITE_WRITE_LOCK"],
                         connect_timeout=app.config["DB_CONNECT_TIMEOUT_SECONDS"],
                         statement_timeout=app.config["DB_STATEMENT_TIMEOUT_SECONDS"])
    app.extensions["hitl_engine"] = engine
    if engine.dialect.name == "sqlite" and engine.url.database and os.path.exists(engine.url.database):
        # Refuses a database whose text index this SQLite cannot run; builds one a SQLite too old
        # for it left out, now that this one can.
        if not check_text_index(engine):
            add_missing_text_index(engine)
        # An import killed while it published left the index's automatic merging paused.
        text_index.restore_after_a_killed_import(engine, now=utcnow(),
                                                 heartbeat_seconds=app.config["RUN_HEARTBEAT_SECONDS"])
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
