"""project_members, projects.archived_at, indexes that deleting a project needs

Plain ``ADD COLUMN`` and ``CREATE INDEX`` (no batch mode, so ``examples`` and its queue index are
untouched). The two ``label_flags`` indexes serve the foreign-key checks when a project's labels
and runs are deleted: without them each deleted label scanned every flag of every project.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("projects", sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "project_members",
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name=op.f("fk_project_members_project_id_projects"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_project_members_user_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("project_id", "user_id", name=op.f("pk_project_members")),
    )
    op.create_index(op.f("ix_project_members_user_id"), "project_members", ["user_id"], unique=False)
    op.create_index("ix_flags_resolution_label_id", "label_flags", ["resolution_label_id"], unique=False)
    op.create_index("ix_flags_run_id", "label_flags", ["run_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_flags_run_id", table_name="label_flags")
    op.drop_index("ix_flags_resolution_label_id", table_name="label_flags")
    op.drop_index(op.f("ix_project_members_user_id"), table_name="project_members")
    op.drop_table("project_members")
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("archived_at")
