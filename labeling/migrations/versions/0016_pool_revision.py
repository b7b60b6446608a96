"""pool revision: projects.pool_revision

A counter bumped by every import that replaces examples' content in place (``on_duplicate``
``update``). The featurizer fitted on a project's pool is cached per process under the pool's
size and newest example, which such an import leaves as they were; the counter is in the key
too, so the next retrain fits the new texts (``labeling.features.pool_featurizer``).
An ``ADD COLUMN`` with a constant default: nothing existing is rewritten.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-09
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("projects", sa.Column("pool_revision", sa.BigInteger(), server_default="0", nullable=False))


def downgrade() -> None:
    op.drop_column("projects", "pool_revision")
