"""Alembic migrations and the models agree, on SQLite and PostgreSQL."""

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from labeling.models import Base


def test_migrated_schema_matches_the_models(db_url):
    engine = create_engine(db_url)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    engine.dispose()
    # Alembic cannot compare the expression index (priority DESC); the next test checks it exists.
    assert [d for d in diff if not (d[0] in ("add_index", "remove_index") and d[1].name == "ix_examples_queue")] == []


def test_upgrade_creates_every_table_and_the_queue_index(db_url):
    engine = create_engine(db_url)
    inspector = inspect(engine)
    tables = set(inspector.get_table_names()) - {"alembic_version"}
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
