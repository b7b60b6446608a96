"""annotations as unbounded text on PostgreSQL (a multi-label set can pass 200 characters)

``varchar(200)`` to ``text`` is a change of the catalogue only on PostgreSQL (no table rewrite).
SQLite does not enforce a declared length, so nothing changes there.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

COLUMNS = (("examples", "predicted_label", True), ("examples", "gold_label", True), ("labels", "value", True),
           ("labels", "warned_suggestion", True), ("snapshot_golds", "label", False), ("label_flags", "given", False),
           ("label_flags", "suggested", True))


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column, nullable in COLUMNS:
        op.alter_column(table, column, type_=sa.Text(), existing_type=sa.String(200), existing_nullable=nullable)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column, nullable in COLUMNS:
        op.alter_column(table, column, type_=sa.String(200), existing_type=sa.Text(), existing_nullable=nullable)
