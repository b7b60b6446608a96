"""Consistent copies of the database while the service runs, and putting one back.

SQLite: the online backup API (a copy as of one moment, whatever writers do meanwhile; copying
the file is not a backup: committed rows may still be in the write-ahead log beside it).
PostgreSQL: its own tools, ``pg_dump --format=custom`` and ``pg_restore --clean``.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from contextlib import closing
from pathlib import Path

from sqlalchemy.engine import make_url

from labeling.errors import InvalidInput

BUSY_MS = 30_000


def backup(url: str, target: Path) -> None:
    """Write a copy of the database at ``url`` to ``target`` (replaced only when complete)."""
    target = Path(target)
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    try:
        if _is_sqlite(url):
            with closing(_sqlite(_sqlite_path(url))) as source, closing(_sqlite(partial)) as copy:
                source.backup(copy)
        else:
            _run_pg_tool(url, "pg_dump", "--format=custom", f"--file={partial}")
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


def restore(url: str, source: Path) -> None:
    """Replace the database at ``url`` with the backup ``source``. Stop the service first: running
    processes keep models and featurizers of the database they knew in memory."""
    source = Path(source)
    if not source.is_file():
        raise InvalidInput.one(f"no backup file at {source}", field="file")
    if _is_sqlite(url):
        _check_sqlite_backup(source)
        with closing(_sqlite(source)) as backup_db, closing(_sqlite(_sqlite_path(url))) as live:
            backup_db.backup(live)
    else:
        _run_pg_tool(url, "pg_restore", "--clean", "--if-exists", "--no-owner", "--single-transaction", str(source))


def _is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def _sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise InvalidInput.one("an in-memory SQLite database has nothing to back up", field="database_url")
    return Path(database)


def _sqlite(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path, timeout=BUSY_MS / 1000)
    connection.execute(f"PRAGMA busy_timeout={BUSY_MS}")
    return connection


def _check_sqlite_backup(path: Path) -> None:
    try:
        with closing(_sqlite(path)) as connection:
            connection.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.DatabaseError:
        raise InvalidInput.one(f"{path} is not a backup of this service's SQLite database", field="file") from None


def _run_pg_tool(url: str, tool: str, *args: str) -> None:
    """Run a PostgreSQL client tool on the database at ``url``; the password goes in the
    environment (PGPASSWORD), never on a command line that ``ps`` shows."""
    if shutil.which(tool) is None:
        raise InvalidInput.one(f"{tool} is not installed (PostgreSQL's client tools do this)", field="database_url")
    parsed = make_url(url)
    env = {**os.environ, **({"PGPASSWORD": parsed.password} if parsed.password else {})}
    target = parsed._replace(drivername="postgresql", password=None).render_as_string(hide_password=False)
    done = subprocess.run([tool, f"--dbname={target}", *args], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise InvalidInput.one(f"{tool} failed: {done.stderr.strip()[-500:]}", field="database_url")
