"""examples.random_pick (the random-sampling baseline), examples.gold_label/gold_n (multi-annotator
consensus), a partial index of labeled examples,
projects.n_examples (a maintained count), and indexes for reading a project in id order and
flags by example

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("examples", schema=None) as batch_op:
        batch_op.add_column(sa.Column("random_pick", sa.Boolean(), server_default=sa.text("false"), nullable=False))
        batch_op.add_column(sa.Column("gold_label", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("gold_n", sa.Integer(), nullable=True))
        batch_op.create_index(
            "ix_examples_labeled", ["project_id"], unique=False,
            sqlite_where=sa.text("n_labels > 0"), postgresql_where=sa.text("n_labels > 0"),
        )


    with op.batch_alter_table("examples", schema=None) as batch_op:
        batch_op.create_index("ix_examples_project_id_id", ["project_id", "id"], unique=False)
    with op.batch_alter_table("label_flags", schema=None) as batch_op:
        batch_op.create_index("ix_flags_example_id", ["example_id"], unique=False)
    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.add_column(sa.Column("n_examples", sa.BigInteger(), server_default="0", nullable=False))
    op.execute("UPDATE projects SET n_examples = (SELECT count(*) FROM examples WHERE examples.project_id = projects.id)")


def downgrade() -> None:
    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.drop_column("n_examples")
    with op.batch_alter_table("label_flags", schema=None) as batch_op:
        batch_op.drop_index("ix_flags_example_id")
    with op.batch_alter_table("examples", schema=None) as batch_op:
        batch_op.drop_index("ix_examples_project_id_id")
    with op.batch_alter_table("examples", schema=None) as batch_op:
        batch_op.drop_index("ix_examples_labeled")
        batch_op.drop_column("gold_n")
        batch_op.drop_column("gold_label")
        batch_op.drop_column("random_pick")
