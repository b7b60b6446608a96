"""example_embeddings: sentence embeddings of text examples, computed once

A table of its own (no batch mode on examples, whose queue index batch mode would rebuild
without its DESC: see 0004).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "example_embeddings",
        sa.Column("example_id", sa.Integer(), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["example_id"], ["examples.id"], name=op.f("fk_example_embeddings_example_id_examples"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("example_id", name=op.f("pk_example_embeddings")),
    )


def downgrade() -> None:
    op.drop_table("example_embeddings")
