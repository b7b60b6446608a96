"""examples.random_key: random picks become an index search

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("examples", schema=None) as batch_op:
        batch_op.add_column(sa.Column("random_key", sa.Float(), server_default="0", nullable=False))
    if op.get_bind().dialect.name == "postgresql":
        op.execute("UPDATE examples SET random_key = random()")
    else:
        op.execute("UPDATE examples SET random_key = (abs(random()) % 1000000007) / 1000000007.0")
    with op.batch_alter_table("examples", schema=None) as batch_op:
        batch_op.create_index(
            "ix_examples_random", ["project_id", "random_key"], unique=False,
            sqlite_where=sa.text("needs_labels = 1"), postgresql_where=sa.text("needs_labels"),
        )


def downgrade() -> None:
    with op.batch_alter_table("examples", schema=None) as batch_op:
        batch_op.drop_index("ix_examples_random")
        batch_op.drop_column("random_key")
