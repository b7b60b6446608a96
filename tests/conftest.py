"""Shared fixtures. Database tests run on SQLite always and on PostgreSQL when
``LABELING_TEST_POSTGRES_URL`` is set; in CI (``CI=true``) a missing PostgreSQL, Redis or
Chromium fails the run instead of skipping."""

from __future__ import annotations

import os
import shutil
import socket
import uuid
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlparse

import pytest
from sqlalchemy import create_engine, text

from labeling.migrate import upgrade
from labeling.models import Base

PG_URL = os.environ.get("LABELING_TEST_POSTGRES_URL", "")
REDIS_URL = os.environ.get("LABELING_TEST_REDIS_URL", "")
CHROMIUM = os.environ.get("LABELING_TEST_CHROMIUM", "/usr/bin/chromium")
REQUIRE_SERVICES = os.environ.get("CI", "").lower() == "true" or os.environ.get("LABELING_REQUIRE_SERVICES") == "1"


def _reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or default_port), timeout=2):
            return True
    except OSError:
        return False


def pytest_sessionstart(session: pytest.Session) -> None:
    if not REQUIRE_SERVICES:
        return
    missing = []
    if not PG_URL or not _reachable(PG_URL, 5432):
        missing.append(f"PostgreSQL (LABELING_TEST_POSTGRES_URL={PG_URL!r})")
    if not REDIS_URL or not _reachable(REDIS_URL, 6379):
        missing.append(f"Redis (LABELING_TEST_REDIS_URL={REDIS_URL!r})")
    if not Path(CHROMIUM).exists():
        missing.append(f"Chromium at {CHROMIUM}")
    if missing:
        raise pytest.UsageError("CI needs these and they are missing: " + "; ".join(missing))


def _backends() -> list[Any]:
    backends: list[Any] = ["sqlite"]
    if PG_URL or REQUIRE_SERVICES:
        backends.append(pytest.param("postgresql", marks=pytest.mark.postgresql))
    return backends


# --- databases ------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, migrated once, dropped at the end."""
    if not PG_URL:
        pytest.skip("PostgreSQL not configured (set LABELING_TEST_POSTGRES_URL)")
    name = f"hitl_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_URL.rsplit("/", 1)[0] + "/" + name
    upgrade(url)
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=_backends())
def db_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    if request.param == "sqlite":
        path = tmp_path / "test.db"
        shutil.copy(sqlite_template, path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("pg_database")
    engine = create_engine(url)
    with engine.begin() as conn:
        tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return url


# --- the app --------------------------------------------------------------------------------

@pytest.fixture
def app_factory(db_url: str, tmp_path: Path):
    from app import create_app

    made = []

    def make(**overrides: Any):
        config = {"DATABASE_URL": db_url, "TESTING": True,
                  "SECRET_KEY": "test-secret", "WTF_CSRF_ENABLED": False, "JOBS": "inline",
                  "WEBHOOK_ALLOW_PRIVATE": True}  # the tests' receivers listen on 127.0.0.1
        config.update(overrides)
        app = create_app(config, instance_path=str(tmp_path / "instance"))
        made.append(app)
        return app

    yield make
    for app in made:
        app.extensions["hitl_jobs"].stop()
        app.extensions["hitl_engine"].dispose()


@pytest.fixture
def app(app_factory):
    return app_factory()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def session(app):
    """A session for checking the database from a test. Its transactions begin deferred, so a
    read left open does not hold SQLite's write lock against the app."""
    from sqlalchemy.orm import Session

    s = Session(bind=app.extensions["hitl_engine"].execution_options(read_only=True), expire_on_commit=False)
    yield s
    s.close()


@pytest.fixture
def make_user(app):
    """Create a user with a password and a token; returns (user, token)."""
    from labeling import users
    from labeling.db import utcnow

    def make(name: str, role: str = "annotator", password: str = "correct horse"):
        s = app.extensions["hitl_sessionmaker"]()
        try:
            user = users.create_user(s, name, role, password=password, now=utcnow())
            token = users.create_token(s, user, now=utcnow())
            s.commit()
            return user, token
        finally:
            s.close()

    return make


@pytest.fixture
def admin_token(make_user) -> str:
    return make_user("admin", "admin")[1]


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def make_project(client, admin_token):
    """Create a project through the API and import examples; returns the project id."""

    def make(n: int = 10, labels: tuple[str, ...] = ("pos", "neg"), settings: dict | None = None,
             examples: list[dict] | None = None) -> int:
        response = client.post("/api/v1/projects", json={"name": f"p-{uuid.uuid4().hex[:6]}", "labels": list(labels),
                                                         "settings": settings or {}}, headers=auth(admin_token))
        assert response.status_code == 201, response.json
        project_id = response.json["id"]
        rows = examples if examples is not None else [{"external_id": f"e{i}", "text": f"example number {i}"} for i in range(n)]
        if rows:
            response = client.post(f"/api/v1/projects/{project_id}/examples", json={"examples": rows},
                                   headers=auth(admin_token))
            assert response.status_code == 201, response.json
        return project_id

    return make
