"""accept_batches.covered_audits: the audits (image ids) at or above the batch's threshold when it
was accepted. They stand for the images the batch took, not for what stays in the pool, so the
estimate of the remaining pseudo-labels leaves them out while the batch is not undone.
Batches from before have none recorded (NULL): nothing is left out for them.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 10:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('accept_batches') as batch:
        batch.add_column(sa.Column('covered_audits', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('accept_batches') as batch:
        batch.drop_column('covered_audits')
