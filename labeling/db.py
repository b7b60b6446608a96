"""Engines and sessions. The caller owns the transaction: nothing here commits."""

from __future__ import annotations

import json
import logging
import re
import sqlite3
import time
import weakref
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any, Iterator

import orjson
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from labeling import sqlite_lock

log = logging.getLogger(__name__)

SQLITE_SYNCHRONOUS_VALUES = ("FULL", "NORMAL", "EXTRA")
# The text index (migration 0014) is an FTS5 table with the trigram tokenizer, which SQLite has
# from 3.34.0 on. With an older SQLite the migration leaves the index out and the data browser's
# search reads the project's examples instead (labeling/browse.py): the same matches, slower.
TRIGRAM_SQLITE = (3, 34, 0)
_TEXT_INDEX: weakref.WeakKeyDictionary[Engine, bool] = weakref.WeakKeyDictionary()
_LOCK_PATHS: weakref.WeakKeyDictionary[Engine, str] = weakref.WeakKeyDictionary()  # SQLite's file lock
_UNSYNCED: weakref.WeakSet[Engine] = weakref.WeakSet()  # SQLite engines whose commits skip the fsync
# A connection checkpoints the log after this many of its write transactions (about 5-20 pages each).
CHECKPOINT_EVERY = 50


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def iso(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with a ``Z``, as the API writes every time."""
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def make_engine(url: str, *, sqlite_synchronous: str = "FULL", sqlite_write_lock: bool = True,
                echo: bool = False, connect_timeout: float = 5, statement_timeout: float = 30) -> Engine:
    """Create an engine with the settings this service relies on.

    On SQLite: WAL journal, a busy timeout, foreign keys on, and every transaction opened with
    ``BEGIN IMMEDIATE`` so that two writers queue instead of failing on a lock upgrade. A
    connection given the execution option ``read_only=True`` opens a deferred transaction instead,
    for long reads (exports) that must not hold the write lock.

    With ``sqlite_write_lock``, write transactions of every process also queue on an exclusive
    ``flock`` of ``<database>.lock``: SQLite's own busy handler sleeps and retries, which let one
    writer starve for seconds under load; a blocked ``flock`` wakes as soon as the lock is free.

    Timeouts, so that a database that hangs gives a fast error rather than a hung worker:
    PostgreSQL gets ``connect_timeout`` for the whole connection handshake and, in the server,
    ``statement_timeout`` per statement; SQLite waits at most ``statement_timeout`` for a lock.
    """
    if url.startswith("sqlite"):
        synchronous = sqlite_synchronous.upper()
        if synchronous not in SQLITE_SYNCHRONOUS_VALUES:
            raise ValueError(
                f"SQLITE_SYNCHRONOUS must be one of {', '.join(SQLITE_SYNCHRONOUS_VALUES)}, "
                f"got {sqlite_synchronous!r}"
            )
        engine = create_engine(url, echo=echo, connect_args={"timeout": statement_timeout},
                               json_serializer=_json_text, json_deserializer=_json_value)
        database = engine.url.database
        lock_path = database + ".lock" if sqlite_write_lock and database and database != ":memory:" else None
        _configure_sqlite(engine, synchronous, lock_path, busy_ms=int(statement_timeout * 1000))
        if synchronous == "NORMAL":
            _UNSYNCED.add(engine)
        return engine
    options = f"-c statement_timeout={int(statement_timeout * 1000)}"
    return create_engine(url, echo=echo, pool_pre_ping=True, pool_timeout=connect_timeout,
                         connect_args={"connect_timeout": max(1, round(connect_timeout)), "options": options},
                         json_serializer=_json_text, json_deserializer=_json_value)


def _json_text(value: Any) -> str:
    """JSON columns are written with orjson (several times faster than the stdlib on imports);
    what orjson refuses (integers beyond 64 bits in a record's meta) goes through the stdlib."""
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:
        return json.dumps(value, ensure_ascii=False)


_LONG_NUMBER = re.compile(r"\d{19}")


def _json_value(text: str | bytes) -> Any:
    # orjson reads an integer beyond 64 bits as a float, silently; a run of 19 digits (more than
    # any number orjson reads exactly) sends the value to the stdlib, which keeps it exact.
    if not isinstance(text, str):  # psycopg hands over bytes
        text = bytes(text).decode()
    if _LONG_NUMBER.search(text):
        return json.loads(text)
    return orjson.loads(text)


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _configure_sqlite(engine: Engine, synchronous: str, lock_path: str | None, *, busy_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event below emit BEGIN itself.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        # 64 MiB of page cache (the default is 2 MiB): a million-row pool's indexes must stay in memory.
        cursor.execute("PRAGMA cache_size=-65536")
        # Python's lowercasing, for the data browser's search without the text index: SQLite's
        # lower() folds ASCII letters only ("ÉTÉ" would miss "été").
        dbapi_connection.create_function("hitl_lower", 1, _lower, deterministic=True)
        if lock_path is not None:
            # SQLite's automatic checkpoint runs inside the commit that crosses 1,000 pages of log,
            # while that writer still holds the file lock: every writer queued behind it waited.
            # Checkpoints run after the file lock is released instead (below).
            cursor.execute("PRAGMA wal_autocheckpoint=0")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        if conn.get_execution_options().get("read_only"):
            conn.exec_driver_sql("BEGIN")
            return
        # The file lock first, then SQLite's: a writer waiting for the file lock must not hold
        # SQLite's write lock (one listener, because SQLAlchemy runs "begin" listeners in the
        # order they were added, whatever ``insert=True`` asks).
        if lock_path is not None and "hitl_lock_fd" not in conn.info:
            conn.info["hitl_lock_fd"] = sqlite_lock.take(lock_path)
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    if lock_path is not None:
        _LOCK_PATHS[engine] = lock_path
        _release_the_file_lock_after_each_transaction(engine)


def _release_the_file_lock_after_each_transaction(engine: Engine) -> None:
    bulk_writer = _LOCK_PATHS[engine] + sqlite_lock.BULK

    def release(info: dict[str, Any]) -> None:
        fd = info.pop("hitl_lock_fd", None)
        if fd is not None:
            sqlite_lock.release(fd)

    def finish(conn: Any, end: str) -> None:
        # The "commit"/"rollback" events fire *before* SQLAlchemy ends the transaction. Ending it
        # here first (SQLAlchemy's own COMMIT then finds none open) keeps the lock until SQLite
        # has let go: released earlier, the next writer's BEGIN IMMEDIATE could meet the database
        # still locked and sleep in SQLite's busy handler.
        if "hitl_lock_fd" not in conn.info:
            return
        dbapi_connection = conn.connection.dbapi_connection
        try:
            getattr(dbapi_connection, end)()
        finally:
            release(conn.info)
        commits = conn.info["hitl_commits"] = conn.info.get("hitl_commits", 0) + 1
        if commits % CHECKPOINT_EVERY == 0 and not sqlite_lock.is_held(bulk_writer):  # else the bulk writer does
            _checkpoint(dbapi_connection)

    event.listen(engine, "commit", lambda conn: finish(conn, "commit"))
    event.listen(engine, "rollback", lambda conn: finish(conn, "rollback"))
    # A connection returned to the pool mid-transaction is reset (rolled back) without the events above.
    event.listen(engine.pool, "reset", lambda dbapi_conn, record, reset_state: release(record.info))
    event.listen(engine.pool, "close", lambda dbapi_conn, record: release(record.info))


def dialect_insert(dialect_name: str, table: Any) -> Any:
    """An INSERT with the dialect's ``on_conflict_do_nothing`` (SQLite or PostgreSQL)."""
    from sqlalchemy.dialects import postgresql, sqlite

    return (postgresql if dialect_name == "postgresql" else sqlite).insert(table)


def insert_ignoring_conflicts(session: Session, table: Any, *, index_elements: list[str] | None = None) -> Any:
    """``INSERT … ON CONFLICT DO NOTHING`` for the session's database (SQLite or PostgreSQL)."""
    return dialect_insert(session.get_bind().dialect.name, table).on_conflict_do_nothing(index_elements=index_elements)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    # expire_on_commit=False: views render objects after committing without reloading them.
    return sessionmaker(bind=engine, expire_on_commit=False)


def checkpoint_wal(session: Any) -> None:
    """On SQLite, copy the write-ahead log into the database now (PASSIVE: blocks no one).

    A bulk writer calls this after its chunks, so that it pays for copying the log it wrote;
    otherwise the next connection to reach ``CHECKPOINT_EVERY`` write transactions pays, often
    an annotator's request.
    """
    engine = session.get_bind()
    if engine.dialect.name != "sqlite":
        return
    raw = engine.raw_connection()
    try:
        _checkpoint(raw.driver_connection)
    finally:
        raw.close()


def _checkpoint(dbapi_connection: Any) -> None:
    try:
        dbapi_connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
    except sqlite3.OperationalError:  # another connection is checkpointing: it does the work
        pass


# Bulk writes go in short transactions: on SQLite a write holds the database's one write lock, and
# an annotator's submit waits behind it (docs/benchmarks.md, "serving while retraining").
WRITE_CHUNK = 250
# A pause after each one hands the lock to a writer queued on it: a released flock is not passed
# on, and a bulk writer, straight back for its next chunk, would often take it again first.
WRITE_PAUSE_SECONDS = 0.0002


def sqlite_lock_path(engine: Engine) -> str | None:
    """The file lock SQLite's writers queue on (None on PostgreSQL, or without the file lock)."""
    return _LOCK_PATHS.get(engine)


def commits_skip_the_fsync(engine: Engine) -> bool:
    """Whether the engine's commits leave the log unsynced (SQLite with ``synchronous=NORMAL``)."""
    return engine in _UNSYNCED


def write_many_in_short_transactions(session: Session, sql: str, rows: list[tuple], *,
                                     chunk: int = WRITE_CHUNK) -> None:
    """Run ``sql`` (``?`` placeholders) for every row with the driver's executemany, committing
    every ``chunk`` rows and pausing after each commit so that annotators' writes get in between.

    SQLAlchemy's per-row parameter handling took longer than the database, hence the raw cursor.
    This is the one place that commits on behalf of its caller: a long bulk write must not hold
    the lock from start to end.
    """
    if session.get_bind().dialect.paramstyle != "qmark":
        sql = sql.replace("?", "%s")
    for start in range(0, len(rows), chunk):
        cursor = session.connection().connection.cursor()
        try:
            cursor.executemany(sql, rows[start:start + chunk])
        finally:
            cursor.close()
        session.commit()
        time.sleep(WRITE_PAUSE_SECONDS)


def read_in_own_transaction(session: Session) -> None:
    """Mark the session's next transaction read-only: on SQLite it then takes no write lock
    (ended by the caller's commit before any write).

    Call it before the session's first statement, or after a commit or rollback: on a session
    that holds a connection already, SQLAlchemy ignores the option (with a warning, "Connection
    is already established"), and the reads run in the open transaction, on SQLite a writer's.
    """
    session.connection(execution_options={"read_only": True})


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


def sqlite_version(connection: Any) -> str:
    """The version of the SQLite library a connection runs on, such as ``"3.40.1"``."""
    return connection.exec_driver_sql("SELECT sqlite_version()").scalar()


def has_trigram(version: str) -> bool:
    """Whether a SQLite of this version has FTS5's trigram tokenizer (the text index's)."""
    return tuple(int(part) for part in version.split(".")[:3]) >= TRIGRAM_SQLITE


def no_trigram_message(version: str) -> str:
    needed = ".".join(map(str, TRIGRAM_SQLITE))
    return f"the text index (migration 0014, FTS5 trigram) needs SQLite {needed} or later; this Python runs SQLite {version}"


def check_text_index(engine: Engine) -> bool:
    """Whether the database has the data browser's text index (always, on PostgreSQL).

    A SQLite database that has the index, opened by a SQLite too old for it, is refused with a
    RuntimeError naming both versions: every insert of an example would fail in the index's
    trigger. Without the index, an old SQLite is logged (the search reads the examples instead).
    """
    if engine.dialect.name != "sqlite":
        return True
    # Read-only: no write lock, which a caller's own session may hold (the file lock is per open file).
    with engine.connect().execution_options(read_only=True) as conn:
        version = sqlite_version(conn)
        present = _table_exists(conn, "examples_fts")
    if present and not has_trigram(version):
        raise RuntimeError(f"this database cannot be used here: {no_trigram_message(version)}. "
                           "Run the service with a Python linked to a newer SQLite.")
    if not has_trigram(version):
        log.warning("%s: the data browser's search reads the examples without it", no_trigram_message(version))
    return present


# Migration 0014's SQLite text index, as it creates it: a copy (a migration stays as written), which
# tests/labeling/test_migrations.py compares with the migrated schema.
_FTS_TEXT = "coalesce(json_extract({row}.data, '$.text'), '')"
_FTS_INSERT = ("INSERT INTO examples_fts(rowid, text, external_id) "
               f"VALUES (new.id, {_FTS_TEXT.format(row='new')}, new.external_id);")
_FTS_DELETE = ("INSERT INTO examples_fts(examples_fts, rowid, text, external_id) "
               f"VALUES ('delete', old.id, {_FTS_TEXT.format(row='old')}, old.external_id);")
TEXT_INDEX_SQLITE = (
    "CREATE VIRTUAL TABLE examples_fts USING fts5(text, external_id, content='', columnsize=0, tokenize='trigram')",
    f"CREATE TRIGGER examples_fts_insert AFTER INSERT ON examples BEGIN {_FTS_INSERT} END",
    f"CREATE TRIGGER examples_fts_delete AFTER DELETE ON examples BEGIN {_FTS_DELETE} END",
    f"CREATE TRIGGER examples_fts_update AFTER UPDATE OF data, external_id ON examples BEGIN {_FTS_DELETE} {_FTS_INSERT} END",
    f"INSERT INTO examples_fts(rowid, text, external_id) SELECT id, {_FTS_TEXT.format(row='examples')}, external_id "
    "FROM examples",
)
TEXT_INDEX_REVISION = 14  # migration 0014; the revisions are numbered


def add_missing_text_index(engine: Engine) -> bool:
    """Build SQLite's text index when a database migrated through 0014 lacks it and this SQLite
    has the trigram tokenizer: migrated by a SQLite older than 3.34, it was left out, and it comes
    once SQLite is upgraded. One write transaction (about 1 s per 100,000 examples on the 2-core
    VM) that looks again under the write lock, so of several processes starting at once one builds
    it. Returns whether it did; nothing to do on PostgreSQL (its index needs no tokenizer).
    """
    if engine.dialect.name != "sqlite":
        return False
    with engine.begin() as conn:
        version = sqlite_version(conn)
        if not has_trigram(version) or _table_exists(conn, "examples_fts") \
                or not _table_exists(conn, "alembic_version"):
            return False
        revision = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() or ""
        if not revision.isdigit() or int(revision) < TEXT_INDEX_REVISION:
            return False  # migration 0014 will build it
        started = time.perf_counter()
        for statement in TEXT_INDEX_SQLITE:
            conn.exec_driver_sql(statement)
    _TEXT_INDEX.pop(engine, None)
    log.warning("built the text index that migration 0014 left out (this SQLite, %s, has the trigram "
                "tokenizer) in %.1f s", version, time.perf_counter() - started)
    return True


def _table_exists(conn: Any, name: str) -> bool:
    return conn.exec_driver_sql("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).first() \
        is not None


def has_text_index(session: Session) -> bool:
    """:func:`check_text_index` for the session's engine, once per engine."""
    engine = session.get_bind().engine
    if engine not in _TEXT_INDEX:
        _TEXT_INDEX[engine] = check_text_index(engine)
    return _TEXT_INDEX[engine]
