"""label doubts: label_doubts and projects.label_check_mark

A model flag on a label that the previous label check judged opens only if that check doubted
it too (``labeling.quality.record_flags``): the doubts of the last check are kept in a table of
their own, and the highest label id it judged on the project. A new table and a nullable
``ADD COLUMN``: nothing existing is rewritten.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("projects", sa.Column("label_check_mark", sa.BigInteger(), nullable=True))
    op.create_table(
        "label_doubts",
        sa.Column("label_id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("posterior", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["label_id"], ["labels.id"], name=op.f("fk_label_doubts_label_id_labels"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name=op.f("fk_label_doubts_project_id_projects"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("label_id", name=op.f("pk_label_doubts")),
    )
    op.create_index(op.f("ix_label_doubts_project_id"), "label_doubts", ["project_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_label_doubts_project_id"), table_name="label_doubts")
    op.drop_table("label_doubts")
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("label_check_mark")
