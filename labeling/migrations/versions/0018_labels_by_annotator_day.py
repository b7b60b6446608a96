"""labels: an index on (project_id, annotator_id, created_at)

The labeling page answers every keypress with "N by you today"; without this index that count
scanned every label of the project (about 0.2 s at 500,000 labels, bench/label_page.py). An
index only: nothing existing is rewritten.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-03
"""

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_labels_project_annotator_created", "labels", ["project_id", "annotator_id", "created_at"],
                    unique=False)


def downgrade() -> None:
    op.drop_index("ix_labels_project_annotator_created", table_name="labels")
