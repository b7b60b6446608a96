"""import_jobs and import_uploads: imports run in the background, their file stored in the database

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    counter = {"nullable": False, "server_default": "0"}
    op.create_table(
        "import_jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("phase", sa.String(length=16), nullable=True),
        sa.Column("format", sa.String(length=16), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=True),
        sa.Column("source", sa.String(length=60), nullable=False),
        sa.Column("update_duplicates", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("rename", sa.JSON(), nullable=True),
        *[sa.Column(name, sa.BigInteger(), **counter) for name in (
            "bytes_total", "bytes_read", "rows_valid", "rows_published", "imported", "duplicates", "labels",
            "updated")],
        sa.Column("problems", sa.JSON(), nullable=True),
        sa.Column("n_problems", sa.Integer(), **counter),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("attempts", sa.Integer(), **counter),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"], name=op.f("fk_import_jobs_created_by_users"),
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name=op.f("fk_import_jobs_project_id_projects"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["run_id"], ["retrain_runs.id"], name=op.f("fk_import_jobs_run_id_retrain_runs"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_jobs")),
    )
    op.create_index(op.f("ix_import_jobs_project_id"), "import_jobs", ["project_id"], unique=False)
    op.create_index(op.f("ix_import_jobs_status"), "import_jobs", ["status"], unique=False)
    op.create_table(
        "import_uploads",
        sa.Column("import_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["import_id"], ["import_jobs.id"], name=op.f("fk_import_uploads_import_id_import_jobs"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("import_id", "seq", name=op.f("pk_import_uploads")),
    )


def downgrade() -> None:
    op.drop_table("import_uploads")
    op.drop_index(op.f("ix_import_jobs_status"), table_name="import_jobs")
    op.drop_index(op.f("ix_import_jobs_project_id"), table_name="import_jobs")
    op.drop_table("import_jobs")
