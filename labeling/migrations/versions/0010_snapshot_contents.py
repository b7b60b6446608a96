"""snapshots keep what they saw: example_revisions, snapshot_golds, snapshots.max_example_id

An import that updates a duplicate keeps the content it replaces (when a snapshot could have
seen it); a retrain keeps its consensus per snapshot; a snapshot records the last example it
could contain. Plain ``CREATE TABLE`` and ``ADD COLUMN``: nothing existing is rewritten.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("snapshots", sa.Column("max_example_id", sa.BigInteger(), nullable=True))
    op.create_table(
        "example_revisions",
        sa.Column("example_id", sa.Integer(), nullable=False),
        sa.Column("last_snapshot", sa.Integer(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("features", sa.LargeBinary(), nullable=True),
        sa.ForeignKeyConstraint(["example_id"], ["examples.id"], name=op.f("fk_example_revisions_example_id_examples"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("example_id", "last_snapshot", name=op.f("pk_example_revisions")),
    )
    op.create_table(
        "snapshot_golds",
        sa.Column("snapshot_id", sa.Integer(), nullable=False),
        sa.Column("example_id", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("n_labels", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["snapshot_id"], ["snapshots.id"], name=op.f("fk_snapshot_golds_snapshot_id_snapshots"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["example_id"], ["examples.id"], name=op.f("fk_snapshot_golds_example_id_examples"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("snapshot_id", "example_id", name=op.f("pk_snapshot_golds")),
    )
    op.create_index("ix_snapshot_golds_example_id", "snapshot_golds", ["example_id"], unique=False)


def downgrade() -> None:
    op.drop_table("snapshot_golds")
    op.drop_table("example_revisions")
    with op.batch_alter_table("snapshots") as batch:
        batch.drop_column("max_example_id")
