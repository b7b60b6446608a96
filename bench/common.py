"""Helpers shared by the benchmark scripts: fresh databases, bulk seeding, a served app."""

from __future__ import annotations

import json
import os
import platform
import signal
import socket
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from datetime import datetime, timezone
from http.client import HTTPConnection
from pathlib import Path
from typing import Any, Iterator

import numpy as np
from sqlalchemy import create_engine, insert, text

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
DATA_DIR = ROOT / "bench" / "data"  # real labeled corpora (see its README)
PG_ADMIN_URL = os.environ.get("LABELING_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
sys.path.insert(0, str(ROOT))


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    return f"{platform.node()} ({os.cpu_count()} cores, {cpu}, Python {platform.python_version()})"


def today() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d")


@contextmanager
def fresh_database(kind: str) -> Iterator[str]:
    """A new, migrated SQLite file or PostgreSQL database; removed afterwards."""
    from labeling.migrate import upgrade

    OUT.mkdir(parents=True, exist_ok=True)
    if kind == "sqlite":
        path = OUT / f"bench-{uuid.uuid4().hex[:8]}.db"
        url = f"sqlite:///{path}"
        upgrade(url)
        try:
            yield url
        finally:
            for suffix in ("", "-wal", "-shm", ".lock", ".lock.wait", ".lock.bulk", ".lock.contended"):
                Path(str(path) + suffix).unlink(missing_ok=True)
        return
    name = f"hitl_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    upgrade(url)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def seed(url: str, *, n: int, n_users: int = 8, dim: int = 0, labels=("pos", "neg"), settings: dict | None = None,
         texts: bool = True) -> tuple[int, list[str]]:
    """Insert a project with ``n`` examples (bulk, like a finished import) and users with tokens."""
    from labeling import projects, users
    from labeling.db import make_engine, make_sessionmaker, utcnow
    from labeling.models import Example

    engine = make_engine(url, sqlite_synchronous="NORMAL")
    maker = make_sessionmaker(engine)
    rng = np.random.default_rng(0)
    with maker() as s:
        project = projects.create_project(s, f"bench-{uuid.uuid4().hex[:6]}", list(labels), settings or {}, now=utcnow())
        tokens = []
        for i in range(n_users):
            user = users.create_user(s, f"annotator{i}", "annotator", password=None, now=utcnow())
            tokens.append(users.create_token(s, user, now=utcnow()))
        admin = users.create_user(s, "benchadmin", "admin", password=None, now=utcnow())
        tokens.append(users.create_token(s, admin, now=utcnow()))
        s.commit()
        project_id = project.id
    now = utcnow()
    chunk = 20000
    with engine.begin() as conn:
        for start in range(0, n, chunk):
            size = min(chunk, n - start)
            prio = rng.random(size)
            keys = rng.random(size)
            feats = rng.normal(size=(size, dim)).astype(np.float32) if dim else None
            conn.execute(insert(Example), [
                {"project_id": project_id, "external_id": f"x{start + i}",
                 "data": {"text": f"example text number {start + i} about topic {(start + i) % 97}"} if texts else {},
                 "features": feats[i].tobytes() if dim else None, "priority": float(prio[i]),
                 "random_key": float(keys[i]),
                 "created_at": now}
                for i in range(size)
            ])
        conn.execute(text("UPDATE projects SET n_examples = :n WHERE id = :p"), {"n": n, "p": project_id})
    engine.dispose()
    return project_id, tokens


def admin_token(url: str, name: str = "admin") -> str:
    """Create an admin user in the database at ``url`` and return its API token."""
    from labeling import users
    from labeling.db import make_engine, make_sessionmaker, utcnow

    engine = make_engine(url)
    with make_sessionmaker(engine)() as s:
        token = users.create_token(s, users.create_user(s, name, "admin", password=None, now=utcnow()), now=utcnow())
        s.commit()
    engine.dispose()
    return token


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def served(url: str, *, workers: int = 4, env: dict[str, str] | None = None) -> Iterator[tuple[str, int, subprocess.Popen]]:
    """Run ``hitl serve`` (gunicorn) on a free port; yields (host, port, process)."""
    port = free_port()
    environment = {**os.environ, "LABELING_DATABASE_URL": url, "LABELING_INSTANCE_PATH": str(OUT / "instance"),
                   "LABELING_LOG_LEVEL": "WARNING", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
                   **(env or {})}
    hitl = str(Path(sys.executable).parent / "hitl")
    process = subprocess.Popen([hitl, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)],
                               env=environment, start_new_session=True)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            conn = HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                break
        except OSError:
            time.sleep(0.2)
    else:
        process.kill()
        raise RuntimeError("the server did not start")
    try:
        yield "127.0.0.1", port, process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


def request(conn: HTTPConnection, method: str, path: str, token: str, body: Any = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    payload = None
    if body is not None:
        payload = json.dumps(body)
        headers["Content-Type"] = "application/json"
    conn.request(method, path, body=payload, headers=headers)
    response = conn.getresponse()
    data = response.read()
    return response.status, (json.loads(data) if data and response.headers.get("Content-Type", "").startswith("application/json") else data)


def import_rows(conn: HTTPConnection, project_id: int, token: str, rows: list[dict]) -> dict:
    """Import through the API; an import still running after the request's wait answers 202 and
    is followed on its status URL to the end. Returns the counts."""
    status, body = request(conn, "POST", f"/api/v1/projects/{project_id}/examples", token, {"examples": rows})
    while status == 202 or (status == 200 and body["status"] in ("queued", "running")):
        time.sleep(0.5)
        status, body = request(conn, "GET", f"/api/v1/imports/{body['id']}", token)
    if status not in (200, 201) or body.get("status", "succeeded") != "succeeded":
        raise RuntimeError(f"import answered {status}: {body}")
    return body


def percentiles(values_ms: list[float]) -> str:
    if not values_ms:
        return "n/a"
    p50, p95, p99 = np.percentile(values_ms, [50, 95, 99])
    return f"p50 {p50:.1f} ms  p95 {p95:.1f} ms  p99 {p99:.1f} ms  max {max(values_ms):.1f} ms  (n={len(values_ms)})"
