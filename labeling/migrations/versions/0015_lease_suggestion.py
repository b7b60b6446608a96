"""lease suggestion: examples.lease_suggestion_mode and examples.lease_suggested

What the labeling page was shown when an example was served (the suggestion mode and the
suggested label) is stored with the lease, so the label submitted under it records what was
shown, not what the model predicts at submit time (a retrain in between re-scores the example).
Nullable ``ADD COLUMN``s only: nothing existing is rewritten; a lease served before this
migration has null here and its label reads the current score, as before.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("examples", sa.Column("lease_suggestion_mode", sa.String(length=16), nullable=True))
    # An annotation: text on PostgreSQL, as migration 0011 made the others.
    annotation = sa.Text() if op.get_bind().dialect.name == "postgresql" else sa.String(length=200)
    op.add_column("examples", sa.Column("lease_suggested", annotation, nullable=True))


def downgrade() -> None:
    # A plain DROP COLUMN (SQLite 3.35+), not a batch copy of ``examples``, which would drop the
    # text index's triggers (migration 0014).
    op.drop_column("examples", "lease_suggested")
    op.drop_column("examples", "lease_suggestion_mode")
