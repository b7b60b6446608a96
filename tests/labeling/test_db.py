"""The SQLite engine: writers queue on the file lock before they take SQLite's own lock."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import sys
import threading
import time

from sqlalchemy import text

from labeling import bulk_writer, sqlite_lock
from labeling.bulk_writer import writers_waiting
from labeling.db import make_engine, make_sessionmaker


def test_a_writer_waiting_for_the_file_lock_does_not_hold_sqlites_write_lock(tmp_path):
    path = tmp_path / "queue.db"
    engine = make_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))

    holder = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(holder, fcntl.LOCK_EX)  # another process's writer, mid-transaction
    writer, written = _insert_in_a_thread(engine, 1)
    try:
        time.sleep(0.3)
        assert not written.is_set(), "the writer did not wait for the file lock"
        # The lock holder can still write: the waiting writer has not taken SQLite's lock.
        other = sqlite3.connect(path, timeout=0, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        other.execute("INSERT INTO t VALUES (2)")
        other.execute("COMMIT")
        other.close()
    finally:
        fcntl.flock(holder, fcntl.LOCK_UN)
        os.close(holder)
        writer.join(10)
    assert written.is_set()
    with engine.connect() as conn:
        assert sorted(conn.execute(text("SELECT x FROM t")).scalars()) == [1, 2]
    engine.dispose()


def test_a_writer_waiting_for_the_file_lock_says_so(tmp_path):
    """A bulk writer asks ``writers_waiting`` after its commits, to let a writer that waits in
    before its next transaction (``bulk_writer.after_commit``, labeling/imports.py)."""
    path = tmp_path / "wait.db"
    engine = make_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
    bulk = make_sessionmaker(engine)()
    bulk.execute(text("INSERT INTO t VALUES (1)"))  # holds the lock, as an import's transaction
    assert not writers_waiting(bulk)
    writer, written = _insert_in_a_thread(engine, 2)
    deadline = time.monotonic() + 10
    while not writers_waiting(bulk):
        assert time.monotonic() < deadline, "the waiting writer did not say so"
        time.sleep(0.01)
    assert not written.is_set()
    bulk.commit()
    writer.join(10)
    assert written.is_set() and not writers_waiting(bulk)
    bulk.close()
    engine.dispose()


def test_the_log_is_checkpointed_after_the_file_lock_not_inside_a_commit(tmp_path):
    """SQLite's automatic checkpoint would run inside the commit that crosses its size, with the
    file lock still held; instead each connection checkpoints after every CHECKPOINT_EVERY
    write transactions, once the lock is released."""
    from labeling.db import CHECKPOINT_EVERY

    path = tmp_path / "log.db"
    engine = make_engine(f"sqlite:///{path}")
    raw = engine.raw_connection()
    assert raw.driver_connection.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
    raw.close()
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x BLOB)"))

    def frames_not_checkpointed() -> int:
        # The WAL index (-shm) header: mxFrame (frames in the log) at byte 16, nBackfill (frames
        # copied into the database) at byte 96 (sqlite.org/walformat.html).
        header = (tmp_path / "log.db-shm").read_bytes()[:100]
        return int.from_bytes(header[16:20], sys.byteorder) - int.from_bytes(header[96:100], sys.byteorder)

    for i in range(2, CHECKPOINT_EVERY):  # the CREATE TABLE was write transaction 1
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO t VALUES (zeroblob(100000))"))
    assert frames_not_checkpointed() > 1000  # past SQLite's automatic size: nobody checkpointed
    with engine.begin() as conn:  # write transaction CHECKPOINT_EVERY
        conn.execute(text("INSERT INTO t VALUES (zeroblob(100000))"))
    assert frames_not_checkpointed() == 0
    engine.dispose()


def test_the_other_connections_leave_the_log_to_a_bulk_writer_that_checkpoints_it(tmp_path):
    """While a bulk writer (an import) checkpoints the log itself, the other connections skip
    their periodic checkpoint, which would copy its pages inside an annotator's request."""
    from labeling.bulk_writer import checkpointing_the_log
    from labeling.db import CHECKPOINT_EVERY

    path = tmp_path / "bulk.db"
    engine = make_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x BLOB)"))

    def frames_not_checkpointed() -> int:
        header = (tmp_path / "bulk.db-shm").read_bytes()[:100]
        return int.from_bytes(header[16:20], sys.byteorder) - int.from_bytes(header[96:100], sys.byteorder)

    def write(times: int) -> None:
        for _ in range(times):
            with engine.begin() as conn:
                conn.execute(text("INSERT INTO t VALUES (zeroblob(10000))"))

    bulk = make_sessionmaker(engine)()
    with checkpointing_the_log(bulk):
        write(CHECKPOINT_EVERY - 1)  # to the connection's checkpoint (the CREATE TABLE was 1): left to the bulk writer
        assert frames_not_checkpointed() > 0
    write(CHECKPOINT_EVERY)  # the bulk writer is done: the connection checkpoints again
    assert frames_not_checkpointed() == 0
    bulk.close()
    engine.dispose()


def _a_writer_waits_for_the_lock(engine, path, value):
    """Another process's writer holds the file lock while a writer of this one waits for it."""
    holder = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(holder, fcntl.LOCK_EX)
    writer, written = _insert_in_a_thread(engine, value)
    try:
        deadline = time.monotonic() + 10
        while not sqlite_lock.is_held(f"{path}.lock{sqlite_lock.WAITING}"):
            assert time.monotonic() < deadline, "the writer did not wait"
            time.sleep(0.01)
    finally:
        fcntl.flock(holder, fcntl.LOCK_UN)
        os.close(holder)
        writer.join(10)
    assert written.is_set()


def test_a_writer_that_had_to_wait_marks_the_lock_contended_unless_its_process_writes_in_bulk(tmp_path):
    path = tmp_path / "contended.db"
    engine = make_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
    lock_path = f"{path}.lock"
    assert not sqlite_lock.contended_within(lock_path, 10)
    with sqlite_lock.bulk_writer(lock_path):  # the import's own heartbeat waiting for the import
        _a_writer_waits_for_the_lock(engine, path, 1)
    assert not sqlite_lock.contended_within(lock_path, 10)
    _a_writer_waits_for_the_lock(engine, path, 2)  # an annotator's write
    assert sqlite_lock.contended_within(lock_path, 10)
    assert not sqlite_lock.contended_within(lock_path, -1)  # the mark ages
    engine.dispose()


def test_a_bulk_writer_syncs_its_log_only_while_annotators_meet_its_lock(tmp_path, monkeypatch):
    """``after_commit`` syncs the log out of the lock if the bulk writer's commits skip the fsync
    (an import's child process: ``synchronous=NORMAL``) and writers of other processes have met
    its lock: else an annotator's commit, which syncs the whole log, pays for it."""
    path = tmp_path / "pace.db"
    engine = make_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
    synced: list[str] = []
    real_sync = bulk_writer.os.fdatasync

    def record_sync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_sync(fd)

    monkeypatch.setattr(bulk_writer.os, "fdatasync", record_sync)
    unsynced = make_engine(f"sqlite:///{path}", sqlite_synchronous="NORMAL")
    bulk, synced_bulk = make_sessionmaker(unsynced)(), make_sessionmaker(engine)()
    for session in (bulk, synced_bulk):
        session.execute(text("INSERT INTO t VALUES (0)"))
        session.commit()
    bulk_writer.after_commit(bulk)
    assert synced == []  # alone: nobody's commit waits on its log

    _a_writer_waits_for_the_lock(engine, path, 1)
    for session in (bulk, synced_bulk):
        bulk_writer.after_commit(session)
    assert synced == [os.path.realpath(f"{path}-wal")]  # the engine whose commits skip the fsync, only
    bulk.close()
    synced_bulk.close()
    unsynced.dispose()
    engine.dispose()


def test_a_bulk_writer_rests_as_long_as_it_worked_only_while_annotators_meet_its_lock(tmp_path):
    """While writers of other processes have met its lock, a bulk writer rests after each
    transaction as long as the transaction took (at most ``MOST_REST_SECONDS``): it then holds the
    lock at most half the time. Alone it goes straight on."""
    path = tmp_path / "rest.db"
    engine = make_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
    bulk = make_sessionmaker(engine)()

    def rest_after(worked: float) -> float:
        began = time.monotonic()
        bulk_writer.after_commit(bulk, worked=worked)
        return time.monotonic() - began

    assert rest_after(0.3) < 0.2  # alone
    _a_writer_waits_for_the_lock(engine, path, 1)
    assert rest_after(0.3) >= 0.3
    assert bulk_writer.MOST_REST_SECONDS <= rest_after(60) < 5  # a long transaction: a capped rest
    bulk.close()
    engine.dispose()


def _insert_in_a_thread(engine, value):
    """A writer on its own thread: the thread, and an event set once its row is committed."""
    written = threading.Event()

    def write() -> None:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO t VALUES (:x)"), {"x": value})
        written.set()

    writer = threading.Thread(target=write)
    writer.start()
    return writer, written
