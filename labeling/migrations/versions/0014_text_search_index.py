"""A text index for the data browser's search: SQLite FTS5 (trigram), PostgreSQL pg_trgm GIN

SQLite: ``examples_fts``, a contentless FTS5 table with the trigram tokenizer (case-insensitive
substrings of three characters or more), one row per example (its rowid is the example's id)
holding the example's text and external id; no column sizes (``columnsize=0``: they serve
ranking, which the browser does not do, and cost a row per example). Triggers on ``examples`` keep it in step with every
insert (imports), every change of ``data`` or ``external_id`` (an import updating duplicates) and
every delete (a project deleted): a contentless table needs the old values to delete a row, and
only a trigger sees them. A future batch migration that copies ``examples`` must recreate the
triggers. The existing examples are indexed here (about 1 s per 100,000 on the 2-core VM).

A SQLite older than 3.34.0 has no trigram tokenizer: there the migration creates nothing and
logs why, and the browser's search reads the examples instead (``labeling.db.has_text_index``).
A database migrated with the index cannot be opened by such a SQLite (the service refuses to
start, naming both versions: ``labeling.db.check_text_index``).

PostgreSQL: the ``pg_trgm`` extension and two GIN trigram indexes, on ``data ->> 'text'`` and on
``external_id``, which serve ``ILIKE '%…%'``; PostgreSQL maintains them itself.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01
"""

import logging

from alembic import op

from labeling import db as labeling_db

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

TEXT = "coalesce(json_extract({row}.data, '$.text'), '')"
INSERT = f"INSERT INTO examples_fts(rowid, text, external_id) VALUES (new.id, {TEXT.format(row='new')}, new.external_id);"
DELETE = (f"INSERT INTO examples_fts(examples_fts, rowid, text, external_id) "
          f"VALUES ('delete', old.id, {TEXT.format(row='old')}, old.external_id);")

SQLITE = [
    "CREATE VIRTUAL TABLE examples_fts USING fts5(text, external_id, content='', columnsize=0, tokenize='trigram')",
    f"CREATE TRIGGER examples_fts_insert AFTER INSERT ON examples BEGIN {INSERT} END",
    f"CREATE TRIGGER examples_fts_delete AFTER DELETE ON examples BEGIN {DELETE} END",
    f"CREATE TRIGGER examples_fts_update AFTER UPDATE OF data, external_id ON examples BEGIN {DELETE} {INSERT} END",
    "INSERT INTO examples_fts(rowid, text, external_id) "
    f"SELECT id, {TEXT.format(row='examples')}, external_id FROM examples",
]
POSTGRESQL = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX ix_examples_text_trgm ON examples USING gin ((data ->> 'text') gin_trgm_ops)",
    "CREATE INDEX ix_examples_external_id_trgm ON examples USING gin (external_id gin_trgm_ops)",
]


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite" and not labeling_db.has_trigram(version := labeling_db.sqlite_version(bind)):
        logging.getLogger("alembic.runtime.migration").warning(
            "no text index: %s; the data browser's search reads the examples instead",
            labeling_db.no_trigram_message(version))
        return
    for statement in SQLITE if bind.dialect.name == "sqlite" else POSTGRESQL:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for trigger in ("examples_fts_insert", "examples_fts_delete", "examples_fts_update"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS examples_fts")
    else:
        op.execute("DROP INDEX IF EXISTS ix_examples_external_id_trgm")
        op.execute("DROP INDEX IF EXISTS ix_examples_text_trgm")
