"""Alembic migrations and the models agree, on SQLite and PostgreSQL."""

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from labeling.models import Base

EXPRESSION_INDEXES = ("ix_examples_queue", "ix_examples_text_trgm", "ix_examples_external_id_trgm")


def test_migrated_schema_matches_the_models(db_url):
    engine = create_engine(db_url)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    engine.dispose()
    # Alembic cannot compare the expression index (priority DESC); the next test checks it exists.
    # The text index (migration 0014) is no model: SQLite's FTS5 table, PostgreSQL's trigram indexes.
    assert [d for d in diff if not (d[0] in ("add_index", "remove_index") and d[1].name in EXPRESSION_INDEXES)
            and not (d[0] == "remove_table" and d[1].name.startswith("examples_fts"))] == []


def test_upgrade_creates_every_table_and_the_queue_index(db_url):
    engine = create_engine(db_url)
    inspector = inspect(engine)
    tables = {t for t in inspector.get_table_names() if not t.startswith("examples_fts")} - {"alembic_version"}
    assert tables == set(Base.metadata.tables)
    assert "ix_examples_queue" in {ix["name"] for ix in inspector.get_indexes("examples")}
    assert "uq_runs_one_active" in {ix["name"] for ix in inspector.get_indexes("retrain_runs")}
    engine.dispose()


def test_the_queue_search_reads_its_index_in_order(db_url):
    """Serving orders by priority DESC, id: the index must hold that order, or the database reads
    every example tied on the top priority and sorts them, on every lease (migration 0004)."""
    from labeling.queue import _candidate_statement

    engine = create_engine(db_url)
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            compiled = _candidate_statement(False, False, "priority").compile(dialect=engine.dialect)
            plan = " | ".join(row[-1] for row in conn.exec_driver_sql(
                "EXPLAIN QUERY PLAN " + str(compiled), tuple(1 for _ in compiled.positiontup)))
            assert "ix_examples_queue" in plan and "TEMP B-TREE" not in plan, plan
        else:
            definition = conn.exec_driver_sql(
                "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_examples_queue'").scalar()
            assert "(project_id, priority DESC, id)" in definition, definition
    engine.dispose()


def test_the_text_index_exists(db_url):
    """Migration 0014: SQLite's FTS5 table with its triggers (insert, update of the text, delete),
    PostgreSQL's trigram indexes."""
    engine = create_engine(db_url)
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            triggers = set(conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'trigger'").scalars())
            assert {"examples_fts_insert", "examples_fts_update", "examples_fts_delete"} <= triggers
            assert "trigram" in conn.exec_driver_sql(
                "SELECT sql FROM sqlite_master WHERE name = 'examples_fts'").scalar()
        else:
            definitions = " ".join(conn.exec_driver_sql(
                "SELECT indexdef FROM pg_indexes WHERE tablename = 'examples' AND indexname IN "
                "('ix_examples_text_trgm', 'ix_examples_external_id_trgm')").scalars())
            assert "gin (((data ->> 'text'::text)) gin_trgm_ops)" in definitions, definitions
            assert "gin (external_id gin_trgm_ops)" in definitions, definitions
    engine.dispose()


def _pretend_sqlite(monkeypatch, version):
    import labeling.db

    monkeypatch.setattr(labeling.db, "sqlite_version", lambda connection: version)
    labeling.db._TEXT_INDEX.clear()


def test_an_old_sqlite_migrates_without_the_text_index_and_still_searches(tmp_path, monkeypatch, caplog):
    """SQLite before 3.34 has no FTS5 trigram tokenizer: migration 0014 leaves the index out and
    says why, the service starts, and the data browser's search reads the examples instead."""
    import logging

    from app import create_app
    from labeling.migrate import upgrade
    from tests.conftest import auth

    _pretend_sqlite(monkeypatch, "3.31.1")
    url = f"sqlite:///{tmp_path / 'old.db'}"
    with caplog.at_level(logging.WARNING):
        upgrade(url)
    assert "needs SQLite 3.34.0 or later; this Python runs SQLite 3.31.1" in caplog.text
    engine = create_engine(url)
    with engine.connect() as conn:
        names = set(conn.exec_driver_sql("SELECT name FROM sqlite_master").scalars())
    engine.dispose()
    assert not {n for n in names if "fts" in n}
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "t", "TESTING": True, "JOBS": "inline"},
                     instance_path=str(tmp_path / "instance"))
    client, token, project_id = _admin_and_two_texts(app)
    found = client.get(f"/api/v1/projects/{project_id}/examples?q=zebra", headers=auth(token)).json
    assert [e["external_id"] for e in found["examples"]] == ["1"] and found["total"] == 1
    app.extensions["hitl_jobs"].stop()
    app.extensions["hitl_engine"].dispose()


def test_a_database_with_the_text_index_is_refused_by_an_old_sqlite_naming_both_versions(sqlite_template, tmp_path,
                                                                                          monkeypatch):
    import shutil

    import pytest

    from app import create_app

    path = tmp_path / "new.db"
    shutil.copy(sqlite_template, path)  # migrated with the index by this (new enough) SQLite
    _pretend_sqlite(monkeypatch, "3.31.1")
    with pytest.raises(RuntimeError, match=r"needs SQLite 3\.34\.0 or later; this Python runs SQLite 3\.31\.1"):
        create_app({"DATABASE_URL": f"sqlite:///{path}", "SECRET_KEY": "t", "TESTING": True, "JOBS": "inline"},
                   instance_path=str(tmp_path / "instance"))


def _text_index_schema(path):
    engine = create_engine(f"sqlite:///{path}")
    with engine.connect() as conn:
        schema = dict(conn.exec_driver_sql(
            "SELECT name, sql FROM sqlite_master WHERE name LIKE 'examples_fts%' ORDER BY name").all())
    engine.dispose()
    return schema


def test_a_database_migrated_by_an_old_sqlite_gets_the_text_index_once_sqlite_is_upgraded(tmp_path, monkeypatch, caplog,
                                                                                         sqlite_template):
    """Migrated on SQLite 3.31.1 (no index), the database gets the index when the service starts on
    a SQLite with the trigram tokenizer: the schema migration 0014 makes, holding the examples
    already there, kept by its triggers from then on; it is built once."""
    import logging

    import labeling.db
    from app import create_app
    from labeling.db import has_text_index
    from labeling.migrate import upgrade
    from tests.conftest import auth

    def start():
        return create_app({"DATABASE_URL": url, "SECRET_KEY": "t", "TESTING": True, "JOBS": "inline"},
                          instance_path=str(tmp_path / "instance"))

    def stop(app):
        app.extensions["hitl_jobs"].stop()
        app.extensions["hitl_engine"].dispose()

    path = tmp_path / "upgraded.db"
    url = f"sqlite:///{path}"
    _pretend_sqlite(monkeypatch, "3.31.1")
    upgrade(url)
    app = start()
    client, token, project_id = _admin_and_two_texts(app)
    stop(app)
    assert _text_index_schema(path) == {}

    monkeypatch.setattr(labeling.db, "sqlite_version", lambda connection: "3.40.1")  # SQLite upgraded
    labeling.db._TEXT_INDEX.clear()
    with caplog.at_level(logging.WARNING):
        app = start()
    assert "built the text index that migration 0014 left out" in caplog.text
    assert _text_index_schema(path) == _text_index_schema(sqlite_template)  # as migration 0014 makes it
    client = app.test_client()
    client.post(f"/api/v1/projects/{project_id}/examples", headers=auth(token), json={"examples": [
        {"external_id": "3", "text": "zebras again"}]})
    with app.extensions["hitl_sessionmaker"]() as s:
        assert has_text_index(s)
        assert sorted(s.execute(text("SELECT rowid FROM examples_fts WHERE examples_fts MATCH '\"zebra\"'")).scalars()) \
            == sorted(s.execute(text("SELECT id FROM examples WHERE external_id IN ('1', '3')")).scalars())
    found = client.get(f"/api/v1/projects/{project_id}/examples?q=ZEBRA", headers=auth(token)).json
    assert [e["external_id"] for e in found["examples"]] == ["1", "3"] and found["total"] == 2
    stop(app)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        stop(start())
    assert "built the text index" not in caplog.text  # once


def _admin_and_two_texts(app):
    """An admin's token and a project holding "A Zebra crossing" (external id 1) and "a horse" (2)."""
    from labeling import users
    from labeling.db import utcnow
    from tests.conftest import auth

    with app.extensions["hitl_sessionmaker"]() as s:
        token = users.create_token(s, users.create_user(s, "boss", "admin", password="correct horse", now=utcnow()),
                                   now=utcnow())
        s.commit()
    client = app.test_client()
    project_id = client.post("/api/v1/projects", headers=auth(token), json={"name": "p", "labels": ["a", "b"]}).json["id"]
    client.post(f"/api/v1/projects/{project_id}/examples", headers=auth(token), json={"examples": [
        {"external_id": "1", "text": "A Zebra crossing"}, {"external_id": "2", "text": "a horse"}]})
    return client, token, project_id
