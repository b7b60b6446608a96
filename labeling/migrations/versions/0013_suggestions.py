"""suggestions: examples.suggestion_probs, labels.suggestion_mode and labels.suggested

The model's top probabilities are stored with its predicted label when it scores the pool; a
label event records what the labeling page showed (blind, show, preselect) and the suggested
label. Nullable ``ADD COLUMN``s only: nothing existing is rewritten.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("examples", sa.Column("suggestion_probs", sa.JSON(), nullable=True))
    op.add_column("labels", sa.Column("suggestion_mode", sa.String(length=16), nullable=True))
    # An annotation: text on PostgreSQL, as migration 0011 made the others.
    annotation = sa.Text() if op.get_bind().dialect.name == "postgresql" else sa.String(length=200)
    op.add_column("labels", sa.Column("suggested", annotation, nullable=True))
    op.create_index("ix_labels_suggestion_mode", "labels", ["project_id"], unique=False,
                    sqlite_where=sa.text("suggestion_mode IS NOT NULL"),
                    postgresql_where=sa.text("suggestion_mode IS NOT NULL"))


def downgrade() -> None:
    op.drop_index("ix_labels_suggestion_mode", table_name="labels")
    with op.batch_alter_table("labels") as batch:
        batch.drop_column("suggested")
        batch.drop_column("suggestion_mode")
    with op.batch_alter_table("examples") as batch:
        batch.drop_column("suggestion_probs")
