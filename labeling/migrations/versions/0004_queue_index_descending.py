"""ix_examples_queue in serving order again (priority DESC, id) on SQLite

SQLite's batch mode in 0002 and 0003 copies the examples table and re-creates its indexes from
reflection, which drops the DESC of an expression column: the queue index became (project_id,
priority, id). Serving orders by priority DESC, id, so SQLite then read every example tied on the
top priority and sorted them by id, on every lease (a model's margins often tie across thousands
of examples). Re-created here without batch mode, so nothing copies it again.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _create(priority: sa.TextClause) -> None:
    op.create_index(
        "ix_examples_queue", "examples", ["project_id", priority, "id"], unique=False,
        sqlite_where=sa.text("needs_labels = 1"), postgresql_where=sa.text("needs_labels"),
    )


def upgrade() -> None:
    op.drop_index("ix_examples_queue", table_name="examples")
    _create(sa.text("priority DESC"))


def downgrade() -> None:
    op.drop_index("ix_examples_queue", table_name="examples")
    _create(sa.text("priority"))
