"""The SQLite engine: writers queue on the file lock before they take SQLite's own lock."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time

from sqlalchemy import text

from labeling.db import make_engine


def test_a_writer_waiting_for_the_file_lock_does_not_hold_sqlites_write_lock(tmp_path):
    path = tmp_path / "queue.db"
    engine = make_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))

    holder = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(holder, fcntl.LOCK_EX)  # another process's writer, mid-transaction
    written = threading.Event()

    def write() -> None:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO t VALUES (1)"))
        written.set()

    writer = threading.Thread(target=write)
    writer.start()
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
