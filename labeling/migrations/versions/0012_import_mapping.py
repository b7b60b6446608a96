"""import_jobs.unknown_columns and import_jobs.problem_groups (the import page that forgives)

Plain nullable ``ADD COLUMN``: existing jobs keep NULL (unknown columns as the API treats them,
no groups recorded).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("import_jobs", sa.Column("unknown_columns", sa.String(length=8), nullable=True))
    op.add_column("import_jobs", sa.Column("problem_groups", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("import_jobs") as batch:
        batch.drop_column("problem_groups")
        batch.drop_column("unknown_columns")
